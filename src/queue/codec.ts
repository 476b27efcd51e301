/**
 * The stored form of a group's rollout state (JSON strings, see src/queue/store.ts):
 * - the core (stable hash, rollout with its thresholds and counters): one small JSON value;
 * - one JSON value per member (`{"c":1,"h":true,"e":"…"}`: connected, healthy, error);
 * - one JSON value per agent of the current rollout
 *   (`{"o":t,"k":1,"p":1,"f":{…},"x":1}`: offeredAt, acked, applied, failure, rejected).
 * Short keys because a large group has tens of thousands of these.
 */
import { RolloutStateError } from "./errors.js";
import type { AgentRecord, GroupRollout, HashRef, MemberRecord, Rollout } from "./model.js";
import { ShardMap } from "./shard-map.js";

interface StoredCore {
  group: string;
  seq: number;
  stable?: HashRef;
  rollout?: Rollout;
}

export function encodeCore(state: GroupRollout): string {
  const core: StoredCore = { group: state.group, seq: state.seq };
  if (state.stable) core.stable = state.stable;
  if (state.rollout) core.rollout = state.rollout;
  return JSON.stringify(core);
}

export function encodeMember(m: MemberRecord): string {
  const out: Record<string, unknown> = { c: m.connected ? 1 : 0 };
  if (m.healthy !== undefined) out.h = m.healthy;
  if (m.error !== undefined) out.e = m.error;
  return JSON.stringify(out);
}

export function decodeMember(text: string): MemberRecord {
  const raw = JSON.parse(text) as { c?: number; h?: boolean; e?: string };
  const m: MemberRecord = { connected: raw.c === 1 };
  if (raw.h !== undefined) m.healthy = raw.h;
  if (raw.e !== undefined) m.error = raw.e;
  return m;
}

export function encodeAgent(a: AgentRecord): string {
  const out: Record<string, unknown> = {};
  if (a.offeredAt !== undefined) out.o = a.offeredAt;
  if (a.acked) out.k = 1;
  if (a.applied) out.p = 1;
  if (a.failure) out.f = a.failure;
  if (a.rejected) out.x = 1;
  return JSON.stringify(out);
}

export function decodeAgent(text: string): AgentRecord {
  const raw = JSON.parse(text) as {
    o?: number;
    k?: number;
    p?: number;
    f?: AgentRecord["failure"];
    x?: number;
  };
  const a: AgentRecord = {};
  if (raw.o !== undefined) a.offeredAt = raw.o;
  if (raw.k) a.acked = true;
  if (raw.p) a.applied = true;
  if (raw.f) a.failure = raw.f;
  if (raw.x) a.rejected = true;
  return a;
}

/** Rebuilds a state from its stored parts. Throws RolloutStateError on malformed data. */
export function decodeState(
  coreText: string,
  members: Iterable<readonly [string, string]>,
  agents: Iterable<readonly [string, string]>,
): GroupRollout {
  let core: StoredCore;
  try {
    core = JSON.parse(coreText) as StoredCore;
  } catch (cause) {
    throw new RolloutStateError("stored rollout state is not JSON", {}, cause);
  }
  if (typeof core?.group !== "string" || typeof core.seq !== "number") {
    throw new RolloutStateError("stored rollout state lacks group or seq", {
      group: core?.group,
    });
  }
  const state: GroupRollout = {
    group: core.group,
    seq: core.seq,
    members: ShardMap.from(mapValues(members, decodeMember)),
    agents: ShardMap.from(mapValues(agents, decodeAgent)),
  };
  if (core.stable) state.stable = core.stable;
  if (core.rollout) state.rollout = core.rollout;
  return state;
}

function* mapValues<T>(
  entries: Iterable<readonly [string, string]>,
  decode: (text: string) => T,
): Iterable<[string, T]> {
  for (const [k, v] of entries) yield [k, decode(v)];
}

/** Serialise and parse again: what a restart does to a state (used by tests). */
export function roundTrip(state: GroupRollout): GroupRollout {
  return decodeState(
    encodeCore(state),
    [...state.members.entries()].map(([k, v]) => [k, encodeMember(v)] as const),
    [...state.agents.entries()].map(([k, v]) => [k, encodeAgent(v)] as const),
  );
}
