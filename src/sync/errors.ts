/**
 * Errors of the Git side (src/sync). Each has a stable `code`, structured `data` (never a
 * credential) and, where one exists, the underlying `cause`. Only the edges (CLI, HTTP API,
 * status branch) turn them into exit codes, statuses or text.
 */
import { CodedError } from "../errors.js";

export class SyncError extends CodedError {
  /** A plain object for events, logs and the status branch. */
  toJSON(): { code: string; message: string; data: Record<string, unknown> } {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** The source options are unusable (bad URL, unsupported scheme, credentials in the URL). */
export class InvalidSourceError extends SyncError {
  override get retryable(): boolean {
    return false;
  }
  constructor(message: string, data: Record<string, unknown> = {}) {
    super("SYNC_INVALID_SOURCE", message, data);
  }
}

/** A path (the watched `--path`, or a file a group names) is absolute or leaves its root. */
export class UnsafePathError extends SyncError {
  constructor(path: string, reason: string) {
    super("SYNC_UNSAFE_PATH", `path "${path}" is not allowed: ${reason}`, { path, reason });
  }
}

/** A local path is not a Git repository (no `.git`, not a bare repository). */
export class NotARepositoryError extends SyncError {
  override get retryable(): boolean {
    return false;
  }
  constructor(path: string, cause?: unknown) {
    super("SYNC_NOT_A_REPOSITORY", `${path} is not a Git repository`, { path }, { cause });
  }
}

/** The repository has no commit at all (nothing to serve yet). */
export class EmptyRepositoryError extends SyncError {
  constructor(source: string) {
    super(
      "SYNC_EMPTY_REPOSITORY",
      `repository ${source} has no commits yet: push a first commit to the watched branch`,
      { source },
    );
  }
}

/** The watched branch does not exist in the repository. */
export class BranchNotFoundError extends SyncError {
  constructor(source: string, branch: string, available: string[]) {
    const some = available.slice(0, 10);
    super(
      "SYNC_BRANCH_NOT_FOUND",
      `branch "${branch}" does not exist in ${source}` +
        (some.length > 0
          ? ` (branches: ${some.join(", ")}${available.length > 10 ? ", …" : ""})`
          : ""),
      { source, branch, available: some },
    );
  }
}

/** The remote refused the credentials, or asked for some and none were configured. */
export class AuthenticationError extends SyncError {
  override get retryable(): boolean {
    return false;
  }
  constructor(source: string, statusCode: number, withCredentials: boolean, cause?: unknown) {
    super(
      "SYNC_AUTH_FAILED",
      withCredentials
        ? `${source} refused the configured credentials (HTTP ${statusCode})`
        : `${source} requires authentication (HTTP ${statusCode}): configure a token file or variable`,
      { source, statusCode, withCredentials },
      { cause },
    );
  }
}

/** A credential file or variable named in the options cannot be read or is empty. */
export class CredentialsError extends SyncError {
  override get retryable(): boolean {
    return false;
  }
  constructor(what: string, message: string, cause?: unknown) {
    super("SYNC_CREDENTIALS_UNAVAILABLE", `${what}: ${message}`, { what }, { cause });
  }
}

/** The remote did not answer, answered an HTTP error, or the transfer failed. Retried. */
export class RemoteUnreachableError extends SyncError {
  constructor(source: string, detail: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super(
      "SYNC_REMOTE_UNREACHABLE",
      `cannot reach ${source}: ${detail}`,
      { source, ...data },
      {
        cause,
      },
    );
  }
}

/**
 * A push the remote answered but did not take: it could not store the pack (`unpack
 * <error>`), a hook declined the update (a protected branch), or it sent no usable report.
 */
export class PushFailedError extends SyncError {
  constructor(source: string, reason: string) {
    super("SYNC_PUSH_FAILED", `pushing to ${source} failed: ${reason}`, { source, reason });
  }
}

/** An object of the store could not be read (corruption, concurrent gc, missing object). */
export class ObjectReadError extends SyncError {
  constructor(what: string, cause?: unknown) {
    super("SYNC_READ_FAILED", `cannot read ${what} from the object store`, { what }, { cause });
  }
}

/** Turns anything thrown into a SyncError (unknown errors become SYNC_INTERNAL). */
export function asSyncError(err: unknown): SyncError {
  if (err instanceof SyncError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SyncError("SYNC_INTERNAL", message, {}, { cause: err });
}
