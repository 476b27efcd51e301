/**
 * The fleet's desired state: what a valid commit asks the service to serve. Built from the
 * validator's FleetSpec and the commit id; immutable once built.
 *
 * Provenance (DESIGN §1): each group's config hash carries the commit that introduced it.
 * When a new commit leaves a group's hash unchanged, the older commit id is kept, so a commit
 * that only touches other groups (or only the group's rollout policy) does not look like a
 * new config for this group. A group deleted and re-added starts a new provenance.
 */
import type { Finding, FleetSpec, GroupSpec } from "../validate/model.js";
import { GroupMatcher } from "./match.js";

/**
 * A group as served: its validated spec (`distribution` is left out: it only matters to the
 * validator) and the commit that introduced its config hash.
 */
export interface GroupDesiredState extends GroupSpec {
  /** The commit that introduced `configHash` for this group (provenance). */
  hashCommit: string;
}

export interface FleetDesiredState {
  /** The commit this state was read from. */
  commit: string;
  /** Tree id of the watched root at `commit`. */
  rootTreeId?: string;
  groups: ReadonlyMap<string, GroupDesiredState>;
  /** Agent → group, precomputed for this state. */
  matcher: GroupMatcher;
  /** Warnings of the commit (validation, reading, selector conflicts). */
  warnings: readonly Finding[];
  /** When the state was built (ms since the epoch). */
  builtAt: number;
  /** Instance uids whose credentials fleet.yaml revokes (`revoked:`), in file order. */
  revoked?: readonly string[];
}

/** What provenance needs of an earlier state: the hash and its commit, per group. */
export type Provenance = ReadonlyMap<string, { configHash: string; hashCommit: string }>;

export interface BuildOptions {
  rootTreeId?: string;
  warnings?: readonly Finding[];
  now?: number;
}

/** Builds the desired state of a valid commit; `previous` supplies provenance. */
export function buildDesiredState(
  fleet: FleetSpec,
  commit: string,
  previous?: Provenance,
  options: BuildOptions = {},
): FleetDesiredState {
  const groups = new Map<string, GroupDesiredState>();
  for (const name of [...fleet.groups.keys()].sort()) {
    const spec = fleet.groups.get(name);
    if (!spec) continue;
    const before = previous?.get(name);
    if (before && isGroupState(before) && sameSpec(before, spec)) {
      groups.set(name, before);
      continue;
    }
    groups.set(name, {
      name,
      selector: spec.selector,
      priority: spec.priority,
      rollout: spec.rollout,
      heartbeatIntervalSeconds: spec.heartbeatIntervalSeconds,
      telemetry: spec.telemetry,
      schema: spec.schema,
      files: spec.files,
      configHash: spec.configHash,
      hashCommit: before && before.configHash === spec.configHash ? before.hashCommit : commit,
    });
  }
  return {
    commit,
    rootTreeId: options.rootTreeId,
    groups,
    matcher: new GroupMatcher(groups.values()),
    warnings: options.warnings ?? [],
    builtAt: options.now ?? Date.now(),
    ...(fleet.revoked ? { revoked: fleet.revoked } : {}),
  };
}

function isGroupState(v: { configHash: string; hashCommit: string }): v is GroupDesiredState {
  return "files" in v && "selector" in v;
}

/** The previous group object can be kept as it is (the validator may reuse its objects). */
function sameSpec(g: GroupDesiredState, spec: GroupSpec): boolean {
  return (
    g.configHash === spec.configHash &&
    g.files === spec.files &&
    g.selector === spec.selector &&
    g.rollout === spec.rollout &&
    g.telemetry === spec.telemetry &&
    g.priority === spec.priority &&
    g.heartbeatIntervalSeconds === spec.heartbeatIntervalSeconds &&
    g.schema === spec.schema
  );
}

export interface DesiredStateChanges {
  /** Groups new in this state. */
  added: string[];
  /** Groups gone from this state (their agents become unassigned). */
  removed: string[];
  /** Groups whose config hash changed (a rollout starts for each, DESIGN §3). */
  hashChanged: string[];
  /** Groups whose selector, priority, rollout, heartbeat or telemetry changed. */
  settingsChanged: string[];
}

/** Structural equality of plain data (objects, arrays, scalars); undefined keys ignored. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka)
    if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

function sameSettings(a: GroupDesiredState, b: GroupDesiredState): boolean {
  return (
    a.priority === b.priority &&
    a.heartbeatIntervalSeconds === b.heartbeatIntervalSeconds &&
    same(a.selector, b.selector) &&
    same(a.rollout, b.rollout) &&
    same(a.telemetry, b.telemetry)
  );
}

/** What changed between two states (group names sorted). */
export function diffDesiredStates(
  previous: FleetDesiredState | undefined,
  next: FleetDesiredState,
): DesiredStateChanges {
  const changes: DesiredStateChanges = {
    added: [],
    removed: [],
    hashChanged: [],
    settingsChanged: [],
  };
  const before = previous?.groups ?? new Map<string, GroupDesiredState>();
  for (const [name, g] of next.groups) {
    const old = before.get(name);
    if (!old) {
      changes.added.push(name);
      continue;
    }
    if (old === g) continue;
    if (old.configHash !== g.configHash) changes.hashChanged.push(name);
    if (!sameSettings(old, g)) changes.settingsChanged.push(name);
  }
  for (const name of before.keys()) if (!next.groups.has(name)) changes.removed.push(name);
  changes.removed.sort();
  return changes;
}
