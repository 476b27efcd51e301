/** Typed checks of isomorphic-git's errors, so no caller compares error codes as strings. */
import { Errors } from "isomorphic-git";

/** isomorphic-git's NotFoundError: a ref, object or remote branch that does not exist. */
export function isGitNotFound(err: unknown): boolean {
  return err instanceof Errors.NotFoundError;
}
