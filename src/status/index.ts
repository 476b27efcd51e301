/**
 * The status module: the writer that commits what agents report to the status branch (or a
 * folder of the config branch), with its Git store under git-store/. Other modules use it
 * only through this file.
 */
export type { AgentPlacement } from "./agent-status.js";
export {
  BranchCheckedOutError,
  InvalidStatusOptionsError,
  LockLostError,
  PackFailedError,
  PublishFailedError,
  StatusError,
  UnsafeStatusNameError,
} from "./errors.js";
export type { StatusLogger } from "./logger.js";
export type {
  AgentStatusFile,
  FleetStatusFile,
  GroupRolloutInfo,
  GroupStatusFile,
  RolloutHistoryEntry,
  RolloutProgress,
  RolloutStatusSource,
} from "./model.js";
export {
  type AgentSource,
  type FlushResult,
  StatusWriter,
  type StatusWriterEvents,
  type StatusWriterOptions,
} from "./status-writer.js";
export type { StatusMode } from "./target.js";
