/**
 * An in-memory AdminBackend: one group with a rollout in flight (stage 1 of 2, waiting) and
 * the agents given, all in that group. Actions change the rollout as the service's would
 * (pause/resume set and clear the hold, refusing what does not apply) and are announced to
 * subscribers.
 */
import type {
  AdminBackend,
  AgentQuery,
  AgentRecord,
  ChangeBatch,
  RestartOutcome,
  RestartTarget,
  RolloutAction,
} from "../../src/api/backend.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities, type AgentState, agentAttributes } from "../../src/opamp/index.js";
import {
  type GroupRolloutStatus,
  NoRolloutInFlightError,
  RolloutHoldError,
  UnknownGroupError,
} from "../../src/queue/index.js";

const HASH = "a".repeat(64);
const COMMIT = "c".repeat(40);

/** An agent as a simulated one reports itself: connected, described, healthy. */
export function fakeAgent(uid: string, attrs: Record<string, string> = {}): AgentState {
  const s = emptyAgentState(uid, "websocket", Date.now());
  s.connected = true;
  s.capabilities = 0x1n | 0x2n;
  s.description = {
    identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
    nonIdentifyingAttributes: Object.entries(attrs).map(([key, v]) => ({
      key,
      value: { stringValue: v },
    })),
  } as AgentState["description"];
  s.health = { healthy: true, status: "StatusOK" } as AgentState["health"];
  return s;
}

export class FakeBackend implements AdminBackend {
  readonly group = "edge";
  readonly agentsById = new Map<string, AgentState>();
  status: GroupRolloutStatus;
  readonly #listeners = new Set<(b: ChangeBatch) => void>();
  triggered = 0;
  /** Restart requests, in order: who asked, for which agent. */
  readonly restarts: Array<{ uid: string; by: string }> = [];

  constructor(agents: AgentState[]) {
    for (const a of agents) this.agentsById.set(a.instanceUid, a);
    this.status = {
      group: this.group,
      served: { hash: HASH, commit: COMMIT },
      rollout: {
        id: "r1",
        target: { hash: HASH, commit: COMMIT },
        status: "in-progress",
        startedAt: Date.now(),
        stage: 0,
        stages: 2,
        percent: 50,
        members: agents.length,
        cohort: Math.ceil(agents.length / 2),
        applied: Math.ceil(agents.length / 2),
        failed: 0,
        pending: 0,
        failures: [],
      },
    };
  }

  #record(state: AgentState): AgentRecord {
    return { state, group: this.group };
  }

  async agents(q: AgentQuery) {
    const needle = q.search?.toLowerCase();
    if ((q.group && q.group !== this.group) || q.state === "unauthorized")
      return { agents: [], total: 0 };
    const all = [...this.agentsById.values()]
      .sort((a, b) => a.instanceUid.localeCompare(b.instanceUid))
      .filter((a) => !q.state || a.connected === (q.state === "connected"))
      .filter(
        (a) =>
          !needle ||
          a.instanceUid.includes(needle) ||
          [...agentAttributes(a).values()].some((v) => v.toLowerCase().includes(needle)),
      );
    const offset = q.offset ?? 0;
    const after = q.after;
    const rest = after === undefined ? all : all.filter((a) => a.instanceUid > after);
    const page = rest.slice(offset, q.limit === undefined ? undefined : offset + q.limit);
    const last = page.at(-1)?.instanceUid;
    const more = last !== undefined && rest.at(-1)?.instanceUid !== last;
    return {
      agents: page.map((a) => this.#record(a)),
      total: all.length,
      ...(more ? { next: last } : {}),
    };
  }

  async agent(uid: string) {
    const a = this.agentsById.get(uid);
    return a ? this.#record(a) : undefined;
  }

  async agentConfigs(uid: string) {
    if (!this.agentsById.has(uid)) return undefined;
    return {
      served: { hash: HASH, commit: COMMIT },
      desired: {
        hash: HASH,
        commit: COMMIT,
        files: { "collector.yaml": { contentType: "text/yaml", content: { a: 1 } } },
      },
      effective: { files: { "": { contentType: "", content: { a: 2 } } } },
    };
  }

  async connections() {
    return [];
  }

  groups() {
    return [
      {
        name: this.group,
        configHash: HASH,
        hashCommit: COMMIT,
        servedCommit: COMMIT,
        priority: 0,
        files: ["collector.yaml"],
        rollout: this.status.rollout ?? null,
      },
    ];
  }

  rollouts() {
    return [this.status];
  }

  rollout(group: string) {
    return group === this.group ? this.status : undefined;
  }

  async history() {
    return [];
  }

  async restart(target: RestartTarget, by: string): Promise<RestartOutcome[]> {
    const uids =
      "uids" in target
        ? target.uids
        : target.group === this.group
          ? [...this.agentsById.values()].filter((a) => a.connected).map((a) => a.instanceUid)
          : [];
    return uids.sort().map((uid) => {
      const a = this.agentsById.get(uid);
      this.restarts.push({ uid, by });
      const accepts = a && (a.capabilities & AgentCapabilities.AcceptsRestartCommand) !== 0n;
      return {
        instanceUid: uid,
        group: a ? this.group : null,
        result: !a?.connected ? "not-here" : accepts ? "sent" : "not-accepted",
      };
    });
  }

  async control(group: string, action: RolloutAction, by: string) {
    if (group !== this.group) throw new UnknownGroupError(group);
    const r = this.status.rollout;
    if (r?.status !== "in-progress") throw new NoRolloutInFlightError(group, action);
    if (action === "pause") {
      if (r.hold) throw new RolloutHoldError(group, r.id, true);
      r.hold = { source: "api", by, at: Date.now() };
    } else if (action === "resume") {
      if (!r.hold) throw new RolloutHoldError(group, r.id, false);
      delete r.hold;
    } else if (action === "promote") {
      r.stage = r.stages - 1;
    } else {
      r.status = "aborted";
    }
    for (const l of this.#listeners)
      l({ groups: [group], agents: [], agentsOverflow: false, sync: false });
    return this.status;
  }

  syncState() {
    return { source: "/repo", branch: "main", path: "", head: COMMIT, serving: COMMIT };
  }

  validation() {
    return { head: COMMIT, serving: COMMIT, warnings: [], source: "/repo", path: "" };
  }

  trigger() {
    this.triggered++;
  }

  async ready() {
    return { ready: true, checks: {} };
  }

  async metrics() {
    return { type: "text/plain", body: "" };
  }

  subscribe(listener: (b: ChangeBatch) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
