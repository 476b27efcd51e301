/**
 * Errors thrown by src/validate (problems with what the user wrote are Findings, not
 * errors). Each has a stable `code` and structured `data`; the command line turns them into
 * exit codes.
 */
import { CodedError } from "../errors.js";

export class ValidateError extends CodedError {}

/**
 * A working tree cannot be read: the base of one class per reason below. None is retryable:
 * the same tree reads the same way until someone changes it.
 */
export abstract class WorkingTreeError extends ValidateError {
  override get retryable(): boolean {
    return false;
  }
}

/** WORKTREE_NOT_FOUND: the root does not exist. */
export class WorkingTreeNotFoundError extends WorkingTreeError {
  constructor(root: string) {
    super("WORKTREE_NOT_FOUND", `${root} does not exist`, { root });
  }
}

/** WORKTREE_NOT_A_DIRECTORY: the root is not a directory. */
export class WorkingTreeNotADirectoryError extends WorkingTreeError {
  constructor(root: string) {
    super("WORKTREE_NOT_A_DIRECTORY", `${root} is not a directory`, { root });
  }
}

/** WORKTREE_PATH_REFUSED: a path that is not normalized or leaves the tree. */
export class PathRefusedError extends WorkingTreeError {
  constructor(path: string, reason: string) {
    super("WORKTREE_PATH_REFUSED", `${path} is refused: ${reason}`, { path });
  }
}

/** WORKTREE_SYMLINK_NOT_FOLLOWED: a path goes through a symbolic link (`link`, its prefix). */
export class SymlinkNotFollowedError extends WorkingTreeError {
  constructor(path: string, link: string) {
    super(
      "WORKTREE_SYMLINK_NOT_FOLLOWED",
      `${link} is a symbolic link; links are not followed (one could point outside the repository)`,
      { path },
    );
  }
}

/** WORKTREE_FILE_TOO_LARGE: a file above the read cap (`size` in bytes). */
export class FileTooLargeError extends WorkingTreeError {
  constructor(path: string, size: number) {
    super("WORKTREE_FILE_TOO_LARGE", `${path} is ${size} bytes`, { path });
  }
}
