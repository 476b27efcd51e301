/**
 * The fleet page (`/`): the head commit's validation state, rollouts in flight with a bar per
 * stage, the groups with their member counts, and the agent list: searched and filtered on the
 * server and paged PAGE_SIZE at a time with the list's cursor (a fleet of 100,000 never loads
 * at once).
 */
import { html } from "hono/html";
import type { AgentPage, AgentQuery, GroupRecord, ValidationState } from "../backend.js";
import { agentView } from "../views.js";
import { progress, short } from "./layout.js";

export const PAGE_SIZE = 50;

export function validationSummary(v: ValidationState | undefined) {
  if (!v) return html`<p>No repository configured: nothing is validated.</p>`;
  if (v.stalled)
    return html`<p class="bad"><strong>Head ${short(v.stalled.commit)} is invalid</strong> (${v.stalled.findings.length} findings) and is not served; serving ${short(v.serving)}. <a href="/validation">See the findings</a>.</p>`;
  if (!v.serving) return html`<p>No valid commit read yet.</p>`;
  return html`<p class="good">Head ${short(v.head ?? v.serving)} is valid and served${v.warnings.length ? html`, with <a href="/validation">${v.warnings.length} warnings</a>` : ""}.</p>`;
}

function rolloutsInFlight(groups: GroupRecord[]) {
  const live = groups.filter((g) => g.rollout?.status === "in-progress");
  if (live.length === 0) return html`<p>No rollout in flight.</p>`;
  return html`<ul class="rollouts">${live.map((g) => {
    const r = g.rollout;
    if (!r) return "";
    const stages = Array.from({ length: r.stages }, (_, i) => {
      const done = i < r.stage ? r.members : i === r.stage ? r.applied : 0;
      const of = i < r.stage ? r.members : i === r.stage ? r.cohort : 0;
      return html`<li>Stage ${i + 1}${i === r.stage && r.percent !== undefined ? ` (${r.percent} %)` : ""}: ${progress(`${g.name} stage ${i + 1}`, done, of)} <span>${done}/${of}</span></li>`;
    });
    return html`<li><a href="/groups/${encodeURIComponent(g.name)}">${g.name}</a> → ${short(r.target.hash)}${r.hold ? html` <strong class="warn">paused by ${r.hold.by}</strong>` : ""}
<ol class="stages">${stages}</ol></li>`;
  })}</ul>`;
}

function filters(q: AgentQuery, groups: GroupRecord[]) {
  const opt = (value: string, label: string, selected: boolean) =>
    html`<option value="${value}"${selected ? html` selected` : ""}>${label}</option>`;
  return html`<form class="filters" method="get" action="/" role="search">
<label>Search <input type="search" name="q" value="${q.search ?? ""}" placeholder="uid or attribute"></label>
<label>Group <select name="group">${opt("", "any", !q.group)}${groups.map((g) => opt(g.name, g.name, q.group === g.name))}</select></label>
<label>State <select name="state">${opt("", "any", !q.state)}${(["connected", "disconnected", "unauthorized"] as const).map((s) => opt(s, s, q.state === s))}</select></label>
<button type="submit">Filter</button>
</form>`;
}

/**
 * The pager: pages go forward with the list's cursor (`after=` the page's `next`); `from`
 * (the first row's position, 1-based) is only shown. A filtered page whose search budget ran
 * out may be short or empty and still have a next page: "more follow" says so.
 */
function pager(q: AgentQuery, page: AgentPage, from: number) {
  const link = (after: string | undefined, at: number) => {
    const p = new URLSearchParams();
    if (q.search) p.set("q", q.search);
    if (q.group) p.set("group", q.group);
    if (q.state) p.set("state", q.state);
    if (after !== undefined) p.set("after", after);
    if (at > 1) p.set("from", String(at));
    const s = p.toString();
    return s ? `/?${s}` : "/";
  };
  const rows = page.agents.length;
  const of =
    page.total !== undefined
      ? ` of ${page.total}`
      : page.estimate !== undefined
        ? ` of about ${page.estimate}`
        : "";
  const p = page.progress;
  const searched = p ? `${p.through.toLocaleString("en")} of ${p.of.toLocaleString("en")}` : "";
  const shown =
    rows > 0
      ? `${from}–${from + rows - 1}${of}`
      : page.next !== undefined
        ? `No match in the agents searched so far${p ? ` (the first ${searched})` : ""}`
        : `0${of}`;
  const more =
    page.next === undefined
      ? ""
      : rows > 0 && p
        ? `, more follow (${searched} agents searched)`
        : ", more follow";
  const first = q.after !== undefined || (q.offset ?? 0) > 0;
  return html`<nav class="pager" aria-label="Agent pages"><span>${shown}${more}</span>
${first ? html`<a href="${link(undefined, 1)}" rel="first">First page</a>` : ""}
${page.next !== undefined ? html`<a href="${link(page.next, from + rows)}" rel="next">Next</a>` : ""}</nav>`;
}

export function agentTable(page: AgentPage) {
  if (page.agents.length === 0) return html`<p>No agent matches.</p>`;
  return html`<div class="scroll"><table class="agents">
<caption class="visually-hidden">Agents</caption>
<thead><tr><th scope="col">Agent</th><th scope="col">Group</th><th scope="col">State</th><th scope="col">Config hash</th><th scope="col">Config status</th><th scope="col">Health</th></tr></thead>
<tbody>${page.agents.map((a) => {
    const v = agentView(a.state, a.group, false, a.unauthorizedGroup);
    const name = v.attributes["host.name"] ?? v.attributes["service.name"] ?? "";
    return html`<tr data-uid="${v.instanceUid}">
<td><a href="/agents/${v.instanceUid}"><code>${v.instanceUid.slice(0, 13)}…</code></a> <span class="muted">${name}</span></td>
<td>${v.group ?? (v.unauthorized ? html`<span class="bad">unauthorized (${v.unauthorized.group})</span>` : "—")}</td>
<td>${v.connected ? html`<span class="good">connected</span>` : html`<span class="muted">disconnected</span>`}</td>
<td><code>${short(v.remoteConfig?.reportedHash)}</code></td>
<td>${v.remoteConfig?.status ?? "—"}${v.remoteConfig?.error ? html` <span class="bad">${v.remoteConfig.error}</span>` : ""}</td>
<td>${v.health ? (v.health.healthy ? html`<span class="good">healthy</span>` : html`<span class="bad">unhealthy</span>`) : "—"}</td>
</tr>`;
  })}</tbody></table></div>`;
}

/** `from`: the position of the page's first row (1-based), as the pager's links carry it. */
export function fleetBody(
  q: AgentQuery,
  page: AgentPage,
  groups: GroupRecord[],
  validation: ValidationState | undefined,
  from = 1,
) {
  return html`<h1>Fleet</h1>
<section aria-labelledby="h-validation"><h2 id="h-validation">Validation</h2>${validationSummary(validation)}</section>
<section aria-labelledby="h-rollouts"><h2 id="h-rollouts">Rollouts in flight</h2>${rolloutsInFlight(groups)}</section>
<section aria-labelledby="h-groups"><h2 id="h-groups">Groups</h2>
<ul class="groups">${groups.map((g) => html`<li><a href="/groups/${encodeURIComponent(g.name)}">${g.name}</a>: ${g.rollout?.members ?? "?"} agents, serving <code>${short(g.configHash)}</code> <a href="/?group=${encodeURIComponent(g.name)}">list</a></li>`)}</ul></section>
<section aria-labelledby="h-agents"><h2 id="h-agents">Agents</h2>${filters(q, groups)}${pager(q, page, from)}${agentTable(page)}</section>`;
}
