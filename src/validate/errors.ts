/**
 * Errors thrown by src/validate (problems with what the user wrote are Findings, not
 * errors). Each has a stable `code` and structured `data`; the command line turns them into
 * exit codes.
 */
export class ValidateError extends Error {
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

/** A working tree cannot be read: not a directory, unreadable, or a path that is refused. */
export class WorkingTreeError extends ValidateError {}
