/**
 * The base of every error the service throws: a stable `code`, structured `data` and, where
 * one exists, the underlying `cause`. Each module has its own subclass (OpampError,
 * SyncError, ValidateError, RolloutError); only the edges turn them into exit codes, HTTP
 * statuses or OpAMP error responses.
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
}
