/**
 * Follows FleetSync for the status writer: the desired state served (`updated`), invalid
 * heads (`stalled`), and whether the first check settled (a first check that failed or
 * stalled means agents are unassigned for now rather than "not known yet"). Returns the
 * function that unsubscribes.
 */

import type { DesiredStateChanges, FleetDesiredState } from "../sync/desired-state.js";
import type { FleetSync } from "../sync/fleet-sync.js";
import type { Finding } from "../validate/model.js";

export interface SyncHandlers {
  desired(state: FleetDesiredState, changes?: DesiredStateChanges): void;
  stalled(commit: string, findings: readonly Finding[]): void;
  /** The placement of agents can be decided now (first state, or none to be had). */
  settled(): void;
}

export function attachFleetSync(sync: FleetSync, h: SyncHandlers): () => void {
  if (sync.current) {
    h.desired(sync.current);
    h.settled();
  }
  const { stalled, lastCheckAt } = sync.status;
  if (stalled) h.stalled(stalled.commit, stalled.findings);
  // Attached after a first check that found nothing to serve: unassigned, not "not known".
  if (!sync.current && lastCheckAt !== undefined) h.settled();
  const offs = [
    sync.on("updated", (e) => {
      h.desired(e.state, e.changes);
      h.settled();
    }),
    sync.on("stalled", (e) => {
      h.stalled(e.commit, e.findings);
      if (!sync.current) h.settled();
    }),
    sync.on("fetchFailed", () => {
      if (!sync.current) h.settled();
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
