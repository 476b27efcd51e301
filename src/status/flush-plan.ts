/**
 * What one flush writes: the pending agent files (from Redis) and the derived files (group
 * files, fleet.yaml), the facts of every file after it, the message inputs (facts before →
 * after, an agent that moved between groups counted once), and what to acknowledge in Redis
 * once published. Pure apart from rendering the derived files.
 */
import { internHash, internReported } from "../opamp/index.js";
import type { DerivedFiles } from "./derived-files.js";
import type { AgentChange, FleetFacts, GroupChange, MessageInputs } from "./message.js";
import type { AgentFacts, GroupFacts } from "./model.js";
import { FLEET_FILE, kindOfPath } from "./paths.js";
import type { PendingChange } from "./pending-store.js";

/**
 * `facts` with its strings that many agents share (group, config hashes, status) replaced by
 * one shared copy each: the writer keeps every agent's facts between flushes, and parsed JSON
 * gives each agent its own copies (~250 B per agent). Mutates and returns `facts`.
 */
export function sharedFacts(facts: AgentFacts): AgentFacts {
  if (facts.group !== null) facts.group = internHash(facts.group);
  if (facts.reportedHash !== null) facts.reportedHash = internReported(facts.reportedHash);
  if (facts.desiredHash !== null) facts.desiredHash = internHash(facts.desiredHash);
  if (facts.status !== null) facts.status = internHash(facts.status) as AgentFacts["status"];
  return facts;
}

/** The facts of the files as last committed. */
export interface CommittedFacts {
  agents: Map<string, AgentFacts>;
  groups: Map<string, GroupFacts>;
  fleet?: FleetFacts;
}

export interface FlushPlan {
  /** path → new content, or null to delete. */
  changes: Map<string, Uint8Array | null>;
  /** The facts once the plan is published. */
  after: Required<CommittedFacts>;
  ack: Array<{ path: string; seq?: string; facts: unknown | null }>;
  messageInputs: Omit<MessageInputs, "files">;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export async function planFlush(
  pending: readonly PendingChange[],
  committed: CommittedFacts,
  derived: DerivedFiles,
): Promise<FlushPlan> {
  const changes = new Map<string, Uint8Array | null>();
  const agents = new Map(committed.agents);
  const byUid = new Map<string, AgentChange>();
  const ack: FlushPlan["ack"] = [];
  for (const p of pending) {
    if (kindOfPath(p.path) !== "agent") {
      ack.push({ path: p.path, seq: p.seq, facts: null });
      continue;
    }
    const before = committed.agents.get(p.path);
    const after = p.content === null ? undefined : sharedFacts(p.facts as AgentFacts);
    changes.set(p.path, p.content === null ? null : Buffer.from(p.content));
    if (after) agents.set(p.path, after);
    else agents.delete(p.path);
    ack.push({ path: p.path, seq: p.seq, facts: after ?? null });
    const uid = after?.uid ?? before?.uid;
    if (!uid) continue;
    const c = byUid.get(uid) ?? {};
    if (before && !c.before) c.before = before;
    if (after) c.after = after;
    byUid.set(uid, c);
  }
  const { files, removed } = await derived.render(agents.values(), committed.groups.keys());
  const groups = new Map<string, GroupFacts>();
  const groupChanges: GroupChange[] = [];
  let fleet = committed.fleet;
  for (const f of files) {
    changes.set(f.path, Buffer.from(f.content));
    const previous = f.path === FLEET_FILE ? committed.fleet : committed.groups.get(f.path);
    if (!same(previous, f.facts)) ack.push({ path: f.path, facts: f.facts });
    if (f.path === FLEET_FILE) {
      fleet = f.facts as FleetFacts;
      continue;
    }
    const g = f.facts as GroupFacts;
    groups.set(f.path, g);
    const before = committed.groups.get(f.path);
    if (!same(before, g)) groupChanges.push({ group: g.group, before, after: g });
  }
  for (const path of removed) {
    changes.set(path, null);
    ack.push({ path, facts: null });
    const before = committed.groups.get(path);
    if (before) groupChanges.push({ group: before.group, before });
  }
  const fleetAfter = fleet as FleetFacts;
  return {
    changes,
    after: { agents, groups, fleet: fleetAfter },
    ack,
    messageInputs: {
      fleet: { before: committed.fleet, after: fleetAfter },
      groups: groupChanges,
      agents: [...byUid.values()],
    },
  };
}
