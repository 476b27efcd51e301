/**
 * src/sync: the Git side. Watches the fleet repository (local path or http(s) remote), reads
 * each new head commit straight from the object store, validates it (through the injected
 * validator) and keeps the fleet's desired state; matches agents to groups.
 * Only this module imports isomorphic-git.
 */
export { Backoff, type BackoffOptions } from "../backoff.js";
export {
  type AnnouncedHead,
  type CommitExchange,
  type CommitObjects,
  NoAnnouncedHeadError,
} from "./commit-exchange.js";
export {
  authHeaders,
  type Env,
  type GitAuth,
  readSecret,
  type SecretSource,
} from "./credentials.js";
export {
  buildDesiredState,
  type DesiredStateChanges,
  diffDesiredStates,
  type FleetDesiredState,
  type GroupDesiredState,
  type Provenance,
} from "./desired-state.js";
export {
  AuthenticationError,
  BranchNotFoundError,
  CredentialsError,
  EmptyRepositoryError,
  InvalidSourceError,
  NotARepositoryError,
  ObjectReadError,
  RemoteUnreachableError,
  SyncError,
  UnsafePathError,
} from "./errors.js";
export { FleetSync, type FleetSyncOptions, type ValidateSnapshot } from "./fleet-sync.js";
export { GitSource, type GitSourceOptions, type HeadUpdate, parseRepo } from "./git-source.js";
export { type InitRepositoryOptions, initRepository } from "./init-repo.js";
export {
  type AgentCounts,
  type KnownAgent,
  type KnownAgents,
  MAX_AGENT_FILE_BYTES,
  MAX_AGENT_FILES,
  parseAgentStatus,
  readAgentCounts,
  readKnownAgents,
} from "./known-agents.js";
export {
  compileMatcher,
  GroupMatcher,
  type MatchableGroup,
  type MatchResult,
  matchGroup,
  selectorMatches,
} from "./match.js";
export { checkBranchName, normalizeFilePath, normalizeRepoPath } from "./paths.js";
export { type FleetListing, PlanSource } from "./plan-source.js";
export {
  type ReadOptions,
  type ReadStats,
  type SnapshotRead,
  SnapshotReader,
} from "./read-snapshot.js";
export { RevisionNotFoundError, resolveRevision } from "./revision.js";
export { SELECTOR_CONFLICT, selectorConflicts } from "./selector-conflicts.js";
export type {
  Assignment,
  ErrorInfo,
  FleetSyncEvents,
  SyncOutcome,
  SyncStatus,
} from "./sync-events.js";
