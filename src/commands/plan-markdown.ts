/**
 * `opamp-gitops plan --format markdown`: a pull-request comment. A verdict and a summary table
 * (one row per group) first; each group's details (findings, agents, rollout stages, added
 * secrets, diffs) collapsed in `<details>`.
 *
 * Everything from the repository (names, messages, diffs) is escaped for Markdown and HTML;
 * diffs go in fences longer than any backtick run they hold. The comment stays under
 * MAX_COMMENT_CHARS (GitHub refuses comments over 65,536 characters): diffs that do not fit
 * are left out with a note saying so.
 */
import type { FileChange, GroupPlan, Plan } from "./plan-model.js";
import { formatDuration } from "./plan-rollout.js";
import {
  agentSourceText,
  agentsText,
  incompatibleText,
  matchingText,
  movesText,
  rolloutText,
  short,
  verdictText,
} from "./plan-text.js";

export const MAX_COMMENT_CHARS = 60_000;
const MAX_TABLE_ROWS = 150;

/** Escapes text for a Markdown paragraph or table cell (no HTML, no formatting, no pipes). */
export function md(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/([\\`*_{}[\]#+!|~])/g, "\\$1")
    .replace(/\r?\n/g, " ");
}

const code = (s: string) =>
  `<code>${s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "&#124;")}</code>`;

function fence(text: string, lang = "diff"): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const f = "`".repeat(longest + 1);
  return `${f}${lang}\n${text.replace(/\n$/, "")}\n${f}`;
}

function findingsCell(g: GroupPlan): string {
  const parts: string[] = [];
  if (g.errors) parts.push(`❌ ${g.errors} error${g.errors === 1 ? "" : "s"}`);
  if (g.warnings) parts.push(`⚠️ ${g.warnings} warning${g.warnings === 1 ? "" : "s"}`);
  if (g.secrets.length)
    parts.push(`🔑 ${g.secrets.length} secret${g.secrets.length === 1 ? "" : "s"} in plain text`);
  return parts.join(", ") || "✅";
}

function rolloutCell(g: GroupPlan): string {
  const r = g.rollout;
  if (!r) return "—";
  const stages = r.stages.map((s) => `${s.percent}%`).join(" → ");
  return `${stages}, ≤ ${formatDuration(r.worstCaseMs)}${r.paused ? " (paused)" : ""}`;
}

function agentsCell(g: GroupPlan): string {
  const { before, after } = g.agents;
  const d = after - before;
  const inc = g.incompatible?.count ? `, ⛔ ${g.incompatible.count} incompatible` : "";
  return `${before} → ${after}${d ? ` (${d > 0 ? "+" : "−"}${Math.abs(d)})` : ""}${inc}`;
}

function fileLine(f: FileChange): string {
  return `${f.change} ${code(f.path)} (+${f.additions} −${f.deletions})${f.binary ? " (binary)" : ""}`;
}

function details(g: GroupPlan, budget: { left: number }): string {
  const out: string[] = [];
  const summary = `<b>${md(g.name)}</b>: ${g.change}, ${findingsCell(g)}`;
  out.push(`<details><summary>${summary}</summary>`, "");
  out.push(`- Config hash: ${code(short(g.hash.before))} → ${code(short(g.hash.after))}`);
  const matching = matchingText(g);
  if (matching) out.push(`- Matching: ${md(matching)}`);
  out.push(`- ${md(agentsText(g))}`);
  if (g.agents.joined.examples.length)
    out.push(`  - joining, e.g. ${g.agents.joined.examples.map(code).join(", ")}`);
  if (g.agents.left.examples.length)
    out.push(`  - leaving, e.g. ${g.agents.left.examples.map(code).join(", ")}`);
  const incompatible = incompatibleText(g);
  if (incompatible) {
    out.push(`- ⛔ ${md(incompatible)}`);
    for (const e of g.incompatible.examples)
      out.push(`  - ${code(e.uid)} lacks ${e.missing.map(code).join(", ")}`);
  }
  if (g.rollout) {
    const r = g.rollout;
    out.push(
      `- Rollout ${code(r.id)}: worst case ${formatDuration(r.worstCaseMs)} (applyTimeout ${formatDuration(r.applyTimeoutMs)} per stage), maxFailures ${r.maxFailures}, onFailure ${r.onFailure}${r.paused ? ", **held** (rollout.paused: true)" : ""}${r.first ? ", first config of the group" : ""}`,
    );
    out.push("", "  | Stage | Percent | Agents | Pause after |", "  |---|---|---|---|");
    for (const [i, s] of r.stages.entries())
      out.push(
        `  | ${i + 1} | ${s.percent}% | ${s.cohort} | ${s.pauseMs ? formatDuration(s.pauseMs) : "—"} |`,
      );
    out.push("");
  } else out.push(`- ${md(rolloutText(g))}`);
  if (g.secrets.length) {
    out.push("- Secrets added in plain text:");
    for (const s of g.secrets)
      out.push(`  - ${code(`${s.file}:${s.line}:${s.column}`)} ${md(s.message)}`);
  }
  if (g.findings.length) {
    out.push("- Findings:");
    for (const f of g.findings)
      out.push(
        `  - ${f.severity === "error" ? "❌" : "⚠️"} ${code(`${f.file}:${f.line}:${f.column}`)} ${code(f.code)} ${md(f.message)}`,
      );
  }
  for (const f of g.files) {
    out.push("", fileLine(f));
    if (!f.diff) continue;
    const block = fence(f.diff);
    if (block.length > budget.left) {
      out.push(
        "",
        "_diff left out: the comment would be too long; run `opamp-gitops plan` locally_",
      );
      continue;
    }
    budget.left -= block.length;
    out.push("", block);
    if (f.truncated) out.push("", "_diff truncated_");
  }
  out.push("", "</details>");
  return out.join("\n");
}

export function formatPlanMarkdown(p: Plan): string {
  const out: string[] = [];
  out.push(`### opamp-gitops plan: ${p.valid ? "✅" : "❌"} ${md(verdictText(p))}`, "");
  out.push(
    `${code(p.base.ref)} (${code(short(p.base.commit))}) → ${code(p.head.ref)} (${code(short(p.head.commit))}); ${md(agentSourceText(p))}.`,
    "",
  );
  if (p.groups.length) {
    out.push(
      "| Group | Change | Config hash | Agents | Rollout | Findings |",
      "|---|---|---|---|---|---|",
    );
    for (const g of p.groups.slice(0, MAX_TABLE_ROWS))
      out.push(
        `| ${md(g.name)} | ${g.change} | ${code(short(g.hash.before))} → ${code(short(g.hash.after))} | ${agentsCell(g)} | ${rolloutCell(g)} | ${findingsCell(g)} |`,
      );
    if (p.groups.length > MAX_TABLE_ROWS)
      out.push(`| … | ${p.groups.length - MAX_TABLE_ROWS} more groups | | | | |`);
    out.push("");
  } else out.push("No group changes.", "");
  if (p.newlyUnassigned.count)
    out.push(
      `⚠️ **${p.newlyUnassigned.count} agent${p.newlyUnassigned.count === 1 ? "" : "s"} newly unassigned** (${md(movesText(p.newlyUnassigned, "from"))}): they keep running what they run and get no config.`,
      "",
    );
  if (p.findings.length) {
    out.push("Findings outside groups:");
    for (const f of p.findings)
      out.push(
        `- ${f.severity === "error" ? "❌" : "⚠️"} ${code(`${f.file}:${f.line}:${f.column}`)} ${code(f.code)} ${md(f.message)}`,
      );
    out.push("");
  }
  const length = () => out.reduce((n, l) => n + l.length + 1, 0);
  // Diffs take what the rest leaves: each group's text is reserved before any diff.
  const reserve = 600;
  const budget = { left: MAX_COMMENT_CHARS - length() - reserve * (p.groups.length + 1) };
  for (const f of p.files) {
    out.push(fileLine(f));
    const block = f.diff ? fence(f.diff) : "";
    if (block && block.length <= budget.left) {
      budget.left -= block.length;
      out.push("", "<details><summary>diff</summary>", "", block, "", "</details>");
    }
    out.push("");
  }
  let shown = 0;
  for (const g of p.groups) {
    const text = details(g, budget);
    if (length() + text.length > MAX_COMMENT_CHARS - 200) break;
    out.push(text, "");
    shown++;
  }
  if (shown < p.groups.length)
    out.push(
      `_Details of ${p.groups.length - shown} more groups left out (the comment would be too long): run \`opamp-gitops plan\` for all of them._`,
      "",
    );
  out.push(
    `<sub>opamp-gitops plan · ${p.untouchedGroups} untouched group${p.untouchedGroups === 1 ? "" : "s"} not revalidated · ${p.durationMs} ms</sub>`,
  );
  return `${out.join("\n")}\n`;
}
