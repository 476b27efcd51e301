/**
 * The group page (`/groups/<name>`): a group selector, the served commit and hash (linked to
 * the Git host when it is one we know), the rollout timeline (stages, cohort, applied, failed,
 * pending, failures with the agents' errors), the controls (pause, resume, promote, abort;
 * the client asks for a confirmation and posts them as JSON) and the ended rollouts.
 */
import { html } from "hono/html";
import type { EndedRollout, GroupRolloutStatus } from "../../queue/index.js";
import type { GroupRecord } from "../backend.js";
import type { GitWeb } from "./git-links.js";
import { progress, short, when } from "./layout.js";

function commitLink(web: GitWeb | undefined, sha: string | null | undefined) {
  if (!sha) return html`—`;
  return web
    ? html`<a href="${web.commit(sha)}" rel="noreferrer"><code>${short(sha)}</code></a>`
    : html`<code>${short(sha)}</code>`;
}

function selector(groups: GroupRecord[], current: string) {
  return html`<form class="filters" method="get" action="/groups" data-navigate>
<label>Group <select name="name">${groups.map((g) => html`<option value="${g.name}"${g.name === current ? html` selected` : ""}>${g.name}</option>`)}</select></label>
<button type="submit">Show</button></form>`;
}

function controls(group: string, status: GroupRolloutStatus | undefined) {
  const r = status?.rollout;
  if (r?.status !== "in-progress") return html`<p>No rollout in flight: nothing to control.</p>`;
  const g = encodeURIComponent(group);
  const button = (action: string, label: string, question: string) =>
    html`<form method="post" action="/api/v1/rollouts/${g}/${action}" data-action data-confirm="${question}"><button type="submit">${label}</button></form>`;
  return html`<div class="controls" role="group" aria-label="Rollout controls">
${r.hold ? button("resume", "Resume", `Resume the rollout of ${group}?`) : button("pause", "Pause", `Pause the rollout of ${group}?`)}
${button("promote", "Promote", `Promote ${group} to its last stage now?`)}
${button("abort", "Abort", `Abort the rollout of ${group}? Agents go back to the stable config.`)}
</div><p id="action-result" role="status" aria-live="polite"></p>`;
}

function timeline(status: GroupRolloutStatus | undefined) {
  const r = status?.rollout;
  if (!r) return html`<p>No rollout yet.</p>`;
  const stages = Array.from({ length: r.stages }, (_, i) => {
    const state =
      i < r.stage
        ? "passed"
        : i === r.stage
          ? r.status === "in-progress"
            ? "current"
            : r.status
          : "waiting";
    return html`<li class="${state}"${i === r.stage ? html` aria-current="step"` : ""}>Stage ${i + 1}: ${state}${i === r.stage ? html` — ${progress(`stage ${i + 1} applied`, r.applied, r.cohort)}` : ""}</li>`;
  });
  return html`<p>Rollout <code>${r.id}</code> from <code>${short(r.from?.hash)}</code> to <code>${short(r.target.hash)}</code>: <strong class="status-${r.status}">${r.status}</strong>${r.hold ? html`, <strong class="warn">paused by ${r.hold.by}</strong> ${when(r.hold.at)}` : ""}${r.endReason ? html` (${r.endReason})` : ""}.</p>
<ol class="timeline">${stages}</ol>
<dl class="counts">
<div><dt>Members</dt><dd>${r.members}</dd></div>
<div><dt>Cohort</dt><dd>${r.cohort}</dd></div>
<div><dt>Applied</dt><dd>${r.applied}</dd></div>
<div><dt>Failed</dt><dd>${r.failed}</dd></div>
<div><dt>Pending</dt><dd>${r.pending}</dd></div>
</dl>
${
  r.failures.length
    ? html`<h3>Failures</h3><div class="scroll"><table><thead><tr><th scope="col">Agent</th><th scope="col">Reason</th><th scope="col">Error</th><th scope="col">When</th></tr></thead><tbody>${r.failures.map((f) => html`<tr><td><a href="/agents/${f.uid}"><code>${f.uid.slice(0, 13)}…</code></a></td><td>${f.reason}</td><td>${f.error ?? ""}</td><td>${when(f.at)}</td></tr>`)}</tbody></table></div>`
    : ""
}`;
}

function historyTable(history: EndedRollout[]) {
  if (history.length === 0) return html`<p>No ended rollout.</p>`;
  return html`<div class="scroll"><table><thead><tr><th scope="col">Rollout</th><th scope="col">Outcome</th><th scope="col">To</th><th scope="col">Started</th><th scope="col">Ended</th></tr></thead><tbody>${history.map((h) => html`<tr><td><code>${h.id}</code></td><td>${h.status}${h.endReason ? ` (${h.endReason})` : ""}</td><td><code>${short(h.target.hash)}</code></td><td>${when(h.startedAt)}</td><td>${when(h.endedAt)}</td></tr>`)}</tbody></table></div>`;
}

export function groupBody(
  group: GroupRecord,
  groups: GroupRecord[],
  status: GroupRolloutStatus | undefined,
  history: EndedRollout[],
  web: GitWeb | undefined,
) {
  return html`<h1>Group ${group.name}</h1>
${selector(groups, group.name)}
<section aria-labelledby="h-served"><h2 id="h-served">Served</h2>
<dl class="facts"><div><dt>Config hash</dt><dd><code>${short(group.configHash)}</code></dd></div>
<div><dt>From commit</dt><dd>${commitLink(web, group.hashCommit)}</dd></div>
<div><dt>Served commit</dt><dd>${commitLink(web, group.servedCommit)}</dd></div>
<div><dt>Files</dt><dd>${group.files.join(", ") || "—"}</dd></div>
<div><dt>Agents</dt><dd><a href="/?group=${encodeURIComponent(group.name)}">list</a></dd></div></dl></section>
<section aria-labelledby="h-rollout"><h2 id="h-rollout">Rollout</h2>${timeline(status)}${controls(group.name, status)}</section>
<section aria-labelledby="h-history"><h2 id="h-history">History</h2>${historyTable(history)}</section>`;
}
