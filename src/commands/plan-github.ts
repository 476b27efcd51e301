/**
 * `opamp-gitops plan --format github`, for a GitHub Actions step: one workflow annotation per
 * finding of the groups the change touches (`::error file=…,line=…,col=…,title=CODE::…`,
 * paths from the repository root so they land on the pull request's lines), a one-line
 * verdict, and the Markdown plan appended to the job summary ($GITHUB_STEP_SUMMARY) when set.
 */
import { appendFile } from "node:fs/promises";
import { githubAnnotation } from "../validate/index.js";
import { formatPlanMarkdown } from "./plan-markdown.js";
import type { Plan } from "./plan-model.js";
import { verdictText } from "./plan-text.js";

export function formatPlanGithub(p: Plan): string {
  const prefix = p.root ? `${p.root}/` : "";
  const lines = [...p.findings, ...p.groups.flatMap((g) => g.findings)].map((f) =>
    githubAnnotation(f, `${prefix}${f.file}`),
  );
  const moved = p.groups.reduce((n, g) => n + g.agents.joined.count, 0);
  const rollouts = p.groups.filter((g) => g.rollout).length;
  lines.push(
    `opamp-gitops plan: ${verdictText(p)}; ${p.groups.length} group(s) touched, ${rollouts} rollout(s), ${moved} agent(s) change group, ${p.newlyUnassigned.count} newly unassigned`,
  );
  return `${lines.join("\n")}\n`;
}

/** Appends the Markdown plan to the job summary file, when the workflow gives one. */
export async function writeJobSummary(
  p: Plan,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const file = env.GITHUB_STEP_SUMMARY;
  if (file) await appendFile(file, formatPlanMarkdown(p));
}
