/**
 * `opamp-gitops plan --format text` (a terminal) and `--format json` (scripts: the Plan of
 * plan-model.ts as it is).
 */
import type { AgentMoves, GroupPlan, Plan } from "./plan-model.js";
import { formatDuration } from "./plan-rollout.js";

export const short = (h: string | null | undefined) => (h ? h.slice(0, 7) : "none");
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;

/** "2 from gateway, 1 from _unassigned". */
export function movesText(m: AgentMoves, dir: "from" | "to"): string {
  return Object.entries(m.by)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([g, n]) => `${n} ${dir} ${g === "_unassigned" ? "unassigned" : g}`)
    .join(", ");
}

/** One line about where the agent counts come from. */
export function agentSourceText(p: Plan): string {
  const a = p.agents;
  const where =
    a.kind === "api"
      ? `the service at ${a.from}`
      : a.kind === "status-branch"
        ? `status branch ${a.from} (${short(a.commit)})`
        : "nowhere";
  const skipped = a.skipped ? `, ${plural(a.skipped, "status file")} skipped` : "";
  return `${plural(a.known, "agent")} known from ${where}${skipped}${a.note ? `: ${a.note}` : ""}`;
}

export function verdictText(p: Plan): string {
  const counts = `${plural(p.errors, "error")}, ${plural(p.warnings, "warning")}`;
  return p.valid
    ? `valid (${counts})`
    : `INVALID (${counts}): serve would not take this commit and keeps serving the last valid one`;
}

export function rolloutText(g: GroupPlan): string {
  const r = g.rollout;
  if (!r) {
    if (g.change === "removed")
      return "no rollout: the group is removed, its agents join another group or become unassigned";
    if (g.errors > 0 || g.hash.after === null) return "no rollout: the head is invalid";
    return "no rollout: the config hash does not change (agents that join get the group's served config at once)";
  }
  const stages = r.stages
    .map(
      (s) =>
        `${s.percent}% = ${plural(s.cohort, "agent")}${s.pauseMs ? `, pause ${formatDuration(s.pauseMs)}` : ""}`,
    )
    .join("; ");
  const notes = [
    `worst case ${formatDuration(r.worstCaseMs)} (applyTimeout ${formatDuration(r.applyTimeoutMs)} per stage)`,
    `maxFailures ${r.maxFailures}, onFailure ${r.onFailure}`,
    ...(r.paused ? ["held: rollout.paused is true"] : []),
    ...(r.first
      ? ["first config of the group: agents outside the cohort get nothing meanwhile"]
      : []),
  ];
  return `rollout ${r.id}: ${stages} (${notes.join("; ")})`;
}

export function agentsText(g: GroupPlan): string {
  const a = g.agents;
  const parts = [`agents ${a.before} → ${a.after}`];
  if (a.joined.count) parts.push(`joined ${a.joined.count}: ${movesText(a.joined, "from")}`);
  if (a.left.count) parts.push(`left ${a.left.count}: ${movesText(a.left, "to")}`);
  return parts.join("; ");
}

/** Incompatible agents (lacking a component type of the head's config); undefined: none. */
export function incompatibleText(g: GroupPlan): string | undefined {
  const i = g.incompatible;
  if (!i || i.count === 0) return undefined;
  const lacking = Object.entries(i.missing)
    .map(([c, n]) => `${c} (${n})`)
    .join(", ");
  return `incompatible ${i.count} of ${i.known} agents with known components${i.all ? " (all: serve refuses it)" : ", left out of the rollout"}: lack ${lacking}`;
}

export function matchingText(g: GroupPlan): string | undefined {
  const { selectorChanged, priority } = g.matching;
  const parts: string[] = [];
  if (selectorChanged && g.change === "changed") parts.push("selector changed");
  if (priority.before !== null && priority.after !== null && priority.before !== priority.after)
    parts.push(`priority ${priority.before} → ${priority.after}`);
  return parts.length ? parts.join(", ") : undefined;
}

export function formatPlanText(p: Plan): string {
  const out: string[] = [];
  out.push(
    `plan ${p.base.ref} (${short(p.base.commit)}) → ${p.head.ref} (${short(p.head.commit)}): ${verdictText(p)}`,
  );
  out.push(agentSourceText(p));
  for (const f of p.findings)
    out.push(`${f.file}:${f.line}:${f.column} ${f.severity} ${f.code} ${f.message}`);
  for (const f of p.files) out.push(`${f.change} ${f.path}`, ...indent(f.diff));
  if (p.groups.length === 0) out.push("no group changes");
  for (const g of p.groups) {
    out.push("", `group ${g.name}: ${g.change}`);
    out.push(`  config hash ${short(g.hash.before)} → ${short(g.hash.after)}`);
    const matching = matchingText(g);
    if (matching) out.push(`  ${matching}`);
    out.push(`  ${agentsText(g)}`);
    const incompatible = incompatibleText(g);
    if (incompatible) out.push(`  ${incompatible}`);
    for (const e of g.incompatible?.examples ?? [])
      out.push(`    ${e.uid} lacks ${e.missing.join(", ")}`);
    out.push(`  ${rolloutText(g)}`);
    for (const s of g.secrets)
      out.push(`  secret added in plain text: ${s.file}:${s.line}:${s.column} ${s.message}`);
    for (const f of g.findings)
      out.push(`  ${f.file}:${f.line}:${f.column} ${f.severity} ${f.code} ${f.message}`);
    for (const f of g.files) {
      out.push(
        `  ${f.change} ${f.path} (+${f.additions} -${f.deletions})${f.binary ? " binary" : ""}`,
      );
      out.push(...indent(f.diff, "    "));
      if (f.truncated) out.push("    … diff truncated");
    }
  }
  if (p.newlyUnassigned.count)
    out.push(
      "",
      `newly unassigned: ${plural(p.newlyUnassigned.count, "agent")} (${movesText(p.newlyUnassigned, "from")}), e.g. ${p.newlyUnassigned.examples.join(", ")}`,
    );
  return `${out.join("\n")}\n`;
}

function indent(text: string, pad = "  "): string[] {
  return text
    ? text
        .replace(/\n$/, "")
        .split("\n")
        .map((l) => `${pad}${l}`)
    : [];
}

export function formatPlanJson(p: Plan): string {
  return `${JSON.stringify(p, null, 2)}\n`;
}
