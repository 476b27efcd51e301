/**
 * src/queue: staged canary rollouts on Redis and BullMQ (DESIGN §3). The service uses
 * RolloutController; the pure machine is exported for tools and tests.
 */
export { allowedFailures, cachedScore, cohortSize, score } from "./cohort.js";
export {
  type GroupSpecInput,
  RolloutController,
  type RolloutControllerOptions,
  type ServeChange,
} from "./controller.js";
export {
  ControllerClosedError,
  ControllerNotStartedError,
  NoRolloutInFlightError,
  RolloutError,
  RolloutHoldError,
  RolloutStateError,
  UnknownGroupError,
} from "./errors.js";
export { type EndedRollout, HISTORY_MAX } from "./history.js";
export { emptyGroup, pendingWakes, step, stepAll } from "./machine.js";
export type {
  FailureReason,
  FailureSummary,
  GroupRollout,
  HashRef,
  Hold,
  ReportStatus,
  Rollout,
  RolloutEvent,
  RolloutNotice,
  RolloutStatus,
  StepResult,
} from "./model.js";
export { RolloutNotices } from "./notices.js";
export { groupServedRef, servedRef, stableOrTarget } from "./serve.js";
export type { GroupRolloutStatus, RolloutView } from "./status.js";
export { rolloutKeys } from "./store.js";
