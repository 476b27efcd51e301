/**
 * status/fleet.yaml: counts over every agent file (from the writer's facts, not from YAML),
 * per group and per reported config hash, with the commit served and the last validation.
 * O(agents) per flush, in memory; no timestamps, so equal counts give equal text.
 */
import type {
  AgentFacts,
  FleetStatusFile,
  GroupCounts,
  HashCounts,
  Totals,
  ValidationStatus,
} from "./model.js";
import { API_VERSION } from "./model.js";

export interface FleetInputs {
  source: { repository: string; branch: string; path: string; serving: string | null };
  /** Fleet-level validation summary (totals, with the findings outside group folders). */
  validation: ValidationStatus | null;
  /**
   * The config hash each group's agents are served, null when none (every group of the
   * served commit appears in `groups`).
   */
  servedHashes: ReadonlyMap<string, string | null>;
}

const byKey = <T>(m: Map<string, T>): Record<string, T> =>
  Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** The fleet file from the facts of every agent file. */
export function fleetStatus(agents: Iterable<AgentFacts>, inputs: FleetInputs): FleetStatusFile {
  const totals: Totals = {
    total: 0,
    connected: 0,
    healthy: 0,
    unhealthy: 0,
    drifted: 0,
    unassigned: 0,
    unauthorized: 0,
  };
  const groups = new Map<string, GroupCounts>();
  const groupOf = (name: string): GroupCounts => {
    let g = groups.get(name);
    if (!g) {
      g = {
        agents: 0,
        connected: 0,
        healthy: 0,
        unhealthy: 0,
        drifted: 0,
        configHash: inputs.servedHashes.get(name) ?? null,
      };
      groups.set(name, g);
    }
    return g;
  };
  for (const name of inputs.servedHashes.keys()) groupOf(name);
  const hashes = new Map<string, HashCounts & { groupSet: Set<string> }>();
  for (const a of agents) {
    totals.total++;
    const healthy = a.connected && a.healthy === true;
    const unhealthy = a.connected && a.healthy === false;
    if (a.connected) totals.connected++;
    if (healthy) totals.healthy++;
    if (unhealthy) totals.unhealthy++;
    if (a.drift) totals.drifted++;
    if (a.unauthorized) totals.unauthorized++;
    if (a.group === null) totals.unassigned++;
    else {
      const g = groupOf(a.group);
      g.agents++;
      if (a.connected) g.connected++;
      if (healthy) g.healthy++;
      if (unhealthy) g.unhealthy++;
      if (a.drift) g.drifted++;
    }
    if (a.reportedHash) {
      let h = hashes.get(a.reportedHash);
      if (!h) {
        h = { agents: 0, connected: 0, applied: 0, failed: 0, groups: [], groupSet: new Set() };
        hashes.set(a.reportedHash, h);
      }
      h.agents++;
      if (a.connected) h.connected++;
      if (a.status === "APPLIED") h.applied++;
      if (a.status === "FAILED") h.failed++;
      if (a.group !== null) h.groupSet.add(a.group);
    }
  }
  const hashOut = new Map<string, HashCounts>();
  for (const [k, h] of hashes)
    hashOut.set(k, {
      agents: h.agents,
      connected: h.connected,
      applied: h.applied,
      failed: h.failed,
      groups: [...h.groupSet].sort(),
    });
  return {
    apiVersion: API_VERSION,
    kind: "FleetStatus",
    source: { ...inputs.source },
    validation: inputs.validation,
    agents: totals,
    groups: byKey(groups),
    hashes: byKey(hashOut),
  };
}
