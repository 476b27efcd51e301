/**
 * The commit message of a flush: what happened, computed from the facts of the files the
 * commit changes (before → after), never from the events that led there, so a message is the
 * same however the changes arrived (and after a restart):
 *
 *   validation failed at 9e1b2c4: 3 errors
 *   serving 9e1b2c4
 *   edge@3f2a9c1 rolled back: 2 of 10 agents failed
 *   edge: 12 applied 3f2a9c1, 1 failed: "exporter otlp: connection refused", 2 disconnected
 *
 * Validation failures, rollbacks, aborts and holds come first; the other parts keep their order.
 * The subject joins the parts with "; " (cut near 200 characters, "+N more"); when there is
 * more than one part, the body lists each on its own line; it ends with how many files changed.
 *
 * Agent text reaches a message only through the facts of the rendered files, so it is already
 * redacted (docs/redaction.md); a quoted error is cut at 80 characters, a rollout's reason at
 * 160.
 */
import type { AgentFacts, GroupFacts } from "./model.js";

export interface FleetFacts {
  serving: string | null;
  validation: { commit: string; result: "passed" | "failed"; errors: number } | null;
}

export interface AgentChange {
  before?: AgentFacts;
  after?: AgentFacts;
}

export interface GroupChange {
  group: string;
  before?: GroupFacts;
  after?: GroupFacts;
}

export interface MessageInputs {
  fleet: { before?: FleetFacts; after: FleetFacts };
  groups: GroupChange[];
  /** One entry per agent uid whose file changed (a move between groups is one entry). */
  agents: AgentChange[];
  /** Number of files the commit changes. */
  files: number;
}

const SUBJECT_MAX = 200;
const URGENT = /^(validation failed|\S+@\S+ (rolled back|aborted|paused))/;
const BODY_MAX_LINES = 200;

const short = (s: string | null | undefined) => (s ? s.slice(0, 7) : "none");
const quote = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
const REASON_MAX = 160;

function plural(n: number, word: string): string {
  return `${n} ${word}`;
}

class Tally {
  readonly applied = new Map<string, number>();
  failed = 0;
  readonly failErrors: string[] = [];
  applying = 0;
  connected = 0;
  disconnected = 0;
  unhealthy = 0;
  readonly healthErrors: string[] = [];
  recovered = 0;
  joined = 0;
  left = 0;
  removed = 0;
  updated = 0;

  items(): string[] {
    const out: string[] = [];
    for (const [hash, n] of [...this.applied].sort((a, b) => b[1] - a[1]))
      out.push(`${n} applied ${short(hash)}`);
    if (this.failed > 0) out.push(withErrors(this.failed, "failed", this.failErrors));
    if (this.applying > 0) out.push(plural(this.applying, "applying"));
    if (this.unhealthy > 0) out.push(withErrors(this.unhealthy, "unhealthy", this.healthErrors));
    if (this.recovered > 0) out.push(plural(this.recovered, "healthy again"));
    if (this.connected > 0) out.push(plural(this.connected, "connected"));
    if (this.disconnected > 0) out.push(plural(this.disconnected, "disconnected"));
    if (this.joined > 0) out.push(plural(this.joined, "joined"));
    if (this.left > 0) out.push(plural(this.left, "left"));
    if (this.removed > 0) out.push(plural(this.removed, "removed"));
    if (this.updated > 0) out.push(plural(this.updated, "updated"));
    return out;
  }
}

function withErrors(n: number, word: string, errors: string[]): string {
  const distinct = [...new Set(errors)];
  const first = distinct[0];
  if (first === undefined) return plural(n, word);
  const more = distinct.length > 1 ? ` (+${distinct.length - 1} other errors)` : "";
  return `${plural(n, word)}: ${quote(first)}${more}`;
}

function tallyAgent(c: AgentChange, tallies: Map<string, Tally>): void {
  const get = (g: string | null) => {
    const key = g ?? "unassigned";
    let t = tallies.get(key);
    if (!t) {
      t = new Tally();
      tallies.set(key, t);
    }
    return t;
  };
  const { before: b, after: a } = c;
  if (!a) {
    if (b) get(b.group).removed++;
    return;
  }
  const t = get(a.group);
  let counted = false;
  if (b && b.group !== a.group) {
    get(b.group).left++;
    t.joined++;
    counted = true;
  }
  const reportChanged =
    !b || b.status !== a.status || b.reportedHash !== a.reportedHash || b.error !== a.error;
  if (reportChanged && a.status === "APPLIED" && a.reportedHash) {
    t.applied.set(a.reportedHash, (t.applied.get(a.reportedHash) ?? 0) + 1);
    counted = true;
  } else if (reportChanged && a.status === "FAILED") {
    t.failed++;
    if (a.error) t.failErrors.push(a.error);
    counted = true;
  } else if (reportChanged && a.status === "APPLYING") {
    t.applying++;
    counted = true;
  }
  if (a.healthy === false && b?.healthy !== false) {
    t.unhealthy++;
    if (a.healthError) t.healthErrors.push(a.healthError);
    counted = true;
  } else if (a.healthy === true && b?.healthy === false) {
    t.recovered++;
    counted = true;
  }
  if (a.connected && !b?.connected) {
    t.connected++;
    counted = true;
  } else if (!a.connected && b?.connected) {
    t.disconnected++;
    counted = true;
  }
  if (!counted) t.updated++;
}

function rolloutParts(c: GroupChange): string[] {
  const a = c.after?.rollout;
  const b = c.before?.rollout;
  if (!a) return [];
  const stage = a.state === "in-progress" && a.stage > 0 ? ` stage ${a.stage}/${a.stages}` : "";
  const pct = stage && a.percent !== null ? ` (${a.percent} %)` : "";
  const cut = (r: string) => (r.length > REASON_MAX ? `${r.slice(0, REASON_MAX)}…` : r);
  const reason = a.reason ? `: ${cut(a.reason)}` : "";
  const same = b?.id === a.id;
  if (!same && a.state === "in-progress") return [`${a.id} started${stage}${pct}`];
  if (!same || b?.state !== a.state) {
    switch (a.state) {
      case "completed":
        return [`${a.id} completed`];
      case "rolled-back":
        return [`${a.id} rolled back${reason}`];
      case "aborted":
        return [`${a.id} aborted${reason}`];
      case "superseded":
        return [`${a.id} superseded${reason}`];
      default:
        return [`${a.id}${stage}${pct}`];
    }
  }
  const out: string[] = [];
  if (b && b.stage !== a.stage && stage) out.push(`${a.id}${stage}${pct}`);
  if (b && b.paused !== a.paused) out.push(`${a.id} ${a.paused ? "paused" : "resumed"}`);
  return out;
}

function groupParts(c: GroupChange): string[] {
  const out: string[] = [];
  const { before: b, after: a } = c;
  if (!a) return [`${c.group}: group removed`];
  if (a.configHash && a.configHash !== b?.configHash)
    out.push(`${c.group}: serving config ${short(a.configHash)} from ${short(a.hashCommit)}`);
  out.push(...rolloutParts(c));
  return out;
}

function fleetParts(before: FleetFacts | undefined, after: FleetFacts): string[] {
  const out: string[] = [];
  const v = after.validation;
  const bv = before?.validation;
  if (v && v.result === "failed" && (bv?.commit !== v.commit || bv.result !== "failed"))
    out.push(`validation failed at ${short(v.commit)}: ${plural(v.errors, "errors")}`);
  if (after.serving && after.serving !== before?.serving)
    out.push(`serving ${short(after.serving)}`);
  return out;
}

/** The commit message for one flush. */
export function commitMessage(inputs: MessageInputs): string {
  const parts = fleetParts(inputs.fleet.before, inputs.fleet.after);
  for (const g of [...inputs.groups].sort((x, y) => (x.group < y.group ? -1 : 1)))
    parts.push(...groupParts(g));
  const tallies = new Map<string, Tally>();
  for (const c of inputs.agents) tallyAgent(c, tallies);
  const names = [...tallies.keys()].sort((x, y) =>
    x === "unassigned" ? 1 : y === "unassigned" ? -1 : x < y ? -1 : x > y ? 1 : 0,
  );
  for (const name of names) {
    const items = tallies.get(name)?.items() ?? [];
    if (items.length > 0) parts.push(`${name}: ${items.join(", ")}`);
  }
  if (parts.length === 0) parts.push(`status: ${plural(inputs.files, "files updated")}`);
  // What went wrong leads, so `git log --oneline` shows it even when the subject is cut.
  parts.sort((a, b) => Number(!URGENT.test(a)) - Number(!URGENT.test(b)));
  let subject = "";
  let used = 0;
  for (const p of parts) {
    const next = subject === "" ? p : `${subject}; ${p}`;
    if (next.length > SUBJECT_MAX && subject !== "") break;
    subject = next;
    used++;
  }
  if (used < parts.length) subject += `; +${parts.length - used} more`;
  const lines: string[] = [];
  if (parts.length > 1) {
    lines.push(...parts.slice(0, BODY_MAX_LINES));
    if (parts.length > BODY_MAX_LINES) lines.push(`… ${parts.length - BODY_MAX_LINES} more`);
    lines.push("");
  }
  lines.push(`${plural(inputs.files, "status files")} changed`);
  return `${subject}\n\n${lines.join("\n")}\n`;
}
