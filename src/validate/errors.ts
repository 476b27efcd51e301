/**
 * Errors thrown by src/validate (problems with what the user wrote are Findings, not
 * errors). Each has a stable `code` and structured `data`; the command line turns them into
 * exit codes.
 */
import { CodedError } from "../errors.js";

export class ValidateError extends CodedError {}

/** A working tree cannot be read: not a directory, unreadable, or a path that is refused. */
export class WorkingTreeError extends ValidateError {}
