/**
 * The base of every error the service throws: a stable `code`, structured `data` and, where
 * one exists, the underlying `cause`. Each module has its own subclass (OpampError,
 * SyncError, ValidateError, RolloutError); only the edges turn them into exit codes, HTTP
 * statuses or OpAMP error responses.
 *
 * Each error also says what happens next: `retryable` is false for an error no retry can mend
 * (a bad setting, a refused credential, a path that is not a repository); a caller then gives
 * up and reports it instead of retrying (the service refuses to start on such a first read of
 * the repository).
 */
export class CodedError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;

  constructor(
    code: string,
    message: string,
    data: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }

  /**
   * False when the same attempt can never succeed until someone changes something. A getter
   * (not an own property), so logs and JSON of errors stay as they were.
   */
  get retryable(): boolean {
    return true;
  }
}
