/**
 * Errors of the rollout module. Each has a stable `code` and structured `data`; the CLI and
 * the HTTP API turn them into exit codes and statuses.
 */
import { CodedError } from "../errors.js";

export class RolloutError extends CodedError {}

/** The controller knows no such group (no commit applied to it). */
export class UnknownGroupError extends RolloutError {
  constructor(group: string) {
    super("ROLLOUT_UNKNOWN_GROUP", `no group named "${group}" has a rollout state`, { group });
  }
}

/** pause, resume, promote or abort asked of a group with no rollout in flight. */
export class NoRolloutInFlightError extends RolloutError {
  constructor(group: string, action: string) {
    super("ROLLOUT_NOT_IN_FLIGHT", `group "${group}" has no rollout in flight to ${action}`, {
      group,
      action,
    });
  }
}

/** pause of a rollout already held, or resume of one that is not. */
export class RolloutHoldError extends RolloutError {
  constructor(group: string, rolloutId: string, paused: boolean) {
    super(
      paused ? "ROLLOUT_ALREADY_PAUSED" : "ROLLOUT_NOT_PAUSED",
      paused ? `rollout ${rolloutId} is already paused` : `rollout ${rolloutId} is not paused`,
      { group, rolloutId },
    );
  }
}

/** Stored state that cannot be read back (corrupt or from an incompatible version). */
export class RolloutStateError extends RolloutError {
  constructor(message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super("ROLLOUT_STATE_INVALID", message, data, { cause });
  }
}

/** The controller was closed before the operation was committed. */
export class ControllerClosedError extends RolloutError {
  constructor() {
    super("ROLLOUT_CONTROLLER_CLOSED", "the rollout controller is closed");
  }
}

/** The controller was used before start() resolved. */
export class ControllerNotStartedError extends RolloutError {
  constructor() {
    super("ROLLOUT_CONTROLLER_NOT_STARTED", "call start() before using the rollout controller");
  }
}
