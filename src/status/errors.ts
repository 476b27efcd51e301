/**
 * Errors of the status branch writer. Each is a SyncError (stable `code`, structured `data`
 * never holding a credential, and the underlying `cause`).
 *
 *   STATUS_INVALID_OPTIONS    the writer's options are unusable (bad branch, interval, ...)
 *   STATUS_UNSAFE_NAME        an instance uid or group name that is not allowed in a path
 *   STATUS_BRANCH_CHECKED_OUT the target branch is checked out in the local work tree
 *   STATUS_PUBLISH_FAILED     the commit could not be published (rejections exhausted, I/O)
 *   STATUS_LOCK_LOST          another replica took the writer lock during a flush
 *   STATUS_PACK_FAILED        packing loose objects failed (nothing was deleted)
 */
import { SyncError } from "../sync/errors.js";

export class StatusError extends SyncError {}

export class InvalidStatusOptionsError extends StatusError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("STATUS_INVALID_OPTIONS", message, data);
  }
}

/** A name from outside (an agent, a repository) that must not become a path. */
export class UnsafeStatusNameError extends StatusError {
  constructor(what: "instance uid" | "group", value: string) {
    super(
      "STATUS_UNSAFE_NAME",
      `${what} ${JSON.stringify(value.slice(0, 80))} cannot name a status file`,
      { what, value: value.slice(0, 80) },
    );
  }
}

export class BranchCheckedOutError extends StatusError {
  constructor(repo: string, branch: string) {
    super(
      "STATUS_BRANCH_CHECKED_OUT",
      `branch "${branch}" is checked out in ${repo}: status commits would leave its work tree ` +
        `out of date; use the default orphan status branch, another branch, or a bare repository`,
      { repo, branch },
    );
  }
}

export class PublishFailedError extends StatusError {
  constructor(message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super("STATUS_PUBLISH_FAILED", message, data, { cause });
  }
}

export class LockLostError extends StatusError {
  constructor(branch: string) {
    super("STATUS_LOCK_LOST", `another replica took the status writer lock for "${branch}"`, {
      branch,
    });
  }
}

export class PackFailedError extends StatusError {
  constructor(message: string, cause?: unknown) {
    super("STATUS_PACK_FAILED", message, {}, { cause });
  }
}
