/**
 * The read-only surface of src/sync, for short-lived commands (`plan`) and settings checks:
 * reading commits from the object store, revisions, agent listings of a status branch and
 * matching. It leaves out the status writer and the fleet loop, whose imports (the OpAMP
 * codec, the redactor's rule sets) cost a new `plan` process about a second of module loading
 * for nothing. Everything here is also exported by index.ts.
 */
export { NotARepositoryError, UnsafePathError } from "./errors.js";
export type { KnownAgent } from "./known-agents.js";
export { compileMatcher } from "./match.js";
export { checkBranchName } from "./paths.js";
export { PlanSource } from "./plan-source.js";
export { RevisionNotFoundError } from "./revision.js";
