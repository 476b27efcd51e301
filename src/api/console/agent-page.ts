/**
 * The agent page (`/agents/<uid>`): description, capabilities, health with its components,
 * desired vs reported hash, the effective config with a diff against the desired one (both
 * redacted as on the status branch), and the connection history.
 *
 * The diff pairs files by name; when each side has exactly one file (the supervisor reports
 * the merged config under `""`), those two are compared whatever their names.
 */
import { createTwoFilesPatch } from "diff";
import { html } from "hono/html";
import { stringify } from "yaml";
import { agentCapabilityNames, type ComponentHealth } from "../../opamp/index.js";
import type { AgentConfigs, AgentRecord, ConnectionEvent, ShownConfigFile } from "../backend.js";
import { agentView, viewAttribute, viewText } from "../views.js";
import { short, when } from "./layout.js";

/** Diffs longer than this many lines are cut (a page stays light). */
const MAX_DIFF_LINES = 2000;

function fileText(f: ShownConfigFile | undefined): string {
  if (!f) return "";
  if (f.content === undefined) return f.note ? `# ${f.note}\n` : "";
  return typeof f.content === "string" ? f.content : stringify(f.content);
}

/** Unified diff lines of desired → effective, paired as the header says. */
export function configDiff(configs: AgentConfigs): string[] {
  const desired = configs.desired?.files ?? {};
  const effective = configs.effective?.files ?? {};
  const dn = Object.keys(desired);
  const en = Object.keys(effective);
  const pairs: Array<[string | undefined, string | undefined]> =
    dn.length === 1 && en.length === 1
      ? [[dn[0], en[0]]]
      : [...new Set([...dn, ...en])]
          .sort()
          .map((n) => [n in desired ? n : undefined, n in effective ? n : undefined]);
  const out: string[] = [];
  for (const [d, e] of pairs) {
    const patch = createTwoFilesPatch(
      d === undefined ? "/dev/null" : `desired/${d || "(merged)"}`,
      e === undefined ? "/dev/null" : `effective/${e || "(merged)"}`,
      fileText(d === undefined ? undefined : desired[d]),
      fileText(e === undefined ? undefined : effective[e]),
      "",
      "",
      { context: 3 },
    );
    out.push(...patch.split("\n").filter((l) => !l.startsWith("====")));
  }
  return out.slice(0, MAX_DIFF_LINES);
}

function healthTree(
  h: ComponentHealth | null | undefined,
  depth = 0,
): ReturnType<typeof html> | string {
  if (!h) return "";
  const entries = Object.entries(h.componentHealthMap ?? {}).slice(0, 100);
  return html`<span class="${h.healthy ? "good" : "bad"}">${h.healthy ? "healthy" : "unhealthy"}</span>${h.status ? ` ${viewText(h.status)}` : ""}${h.lastError ? html` <span class="bad">${viewText(h.lastError)}</span>` : ""}
${depth < 3 && entries.length ? html`<ul class="health">${entries.map(([name, c]) => html`<li><code>${viewText(name)}</code>: ${healthTree(c, depth + 1)}</li>`)}</ul>` : ""}`;
}

function attributes(title: string, attrs: Record<string, string>) {
  const rows = Object.entries(attrs);
  return html`<h3>${title}</h3>${rows.length ? html`<dl class="attrs">${rows.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>` : html`<p>none</p>`}`;
}

export function agentBody(
  a: AgentRecord,
  configs: AgentConfigs | undefined,
  history: ConnectionEvent[],
) {
  const v = agentView(a.state, a.group, false, a.unauthorizedGroup);
  const attrs = (
    kvs: readonly { key: string; value?: { stringValue?: string | null } | null }[] | undefined,
  ) =>
    Object.fromEntries((kvs ?? []).map((kv) => viewAttribute(kv.key, kv.value?.stringValue ?? "")));
  const description = a.state.description;
  const desiredHash = configs?.desired?.hash;
  const reported = v.remoteConfig?.reportedHash ?? null;
  const diff = configs ? configDiff(configs) : [];
  const differs = diff.some(
    (l) => (l.startsWith("+") || l.startsWith("-")) && !l.startsWith("+++") && !l.startsWith("---"),
  );
  return html`<h1>Agent <code>${v.instanceUid}</code></h1>
<dl class="facts">
<div><dt>Group</dt><dd>${v.group ? html`<a href="/groups/${encodeURIComponent(v.group)}">${v.group}</a>` : v.unauthorized ? html`<span class="bad">unauthorized for ${v.unauthorized.group}</span>` : "—"}</dd></div>
<div><dt>State</dt><dd>${v.connected ? "connected" : "disconnected"} (${v.transport})</dd></div>
<div><dt>Desired hash (Git)</dt><dd><code>${short(desiredHash)}</code></dd></div>
<div><dt>Served hash</dt><dd><code>${short(configs?.served?.hash)}</code></dd></div>
<div><dt>Reported hash</dt><dd><code>${short(reported)}</code> ${desiredHash && reported ? (desiredHash === reported ? html`<span class="good">matches</span>` : html`<span class="warn">differs</span>`) : ""}</dd></div>
<div><dt>Config status</dt><dd>${v.remoteConfig?.status ?? "—"}${v.remoteConfig?.error ? html` <span class="bad">${v.remoteConfig.error}</span>` : ""}</dd></div>
<div><dt>Last seen</dt><dd>${when(v.lastSeenAt)}</dd></div>
</dl>
<section aria-labelledby="h-health"><h2 id="h-health">Health</h2>${a.state.health ? healthTree(a.state.health) : html`<p>Not reported.</p>`}</section>
<section aria-labelledby="h-desc"><h2 id="h-desc">Description</h2>${attributes("Identifying", attrs(description?.identifyingAttributes))}${attributes("Non-identifying", attrs(description?.nonIdentifyingAttributes))}
<h3>Capabilities</h3><ul class="caps">${agentCapabilityNames(a.state.capabilities).map((c) => html`<li>${c}</li>`)}</ul></section>
<section aria-labelledby="h-config"><h2 id="h-config">Effective config vs desired</h2>
<p class="muted">Desired: the group's config in the served commit${desiredHash && configs?.served && configs.served.hash !== desiredHash ? " (not yet served to this agent: the rollout has not reached it, or it failed)" : ""}.</p>
<p>${configs?.effective ? (differs ? "The effective config differs from the desired one (secrets redacted as on the status branch):" : "The effective config shows no difference from the desired one.") : "No effective config reported."}</p>
${diff.length ? html`<pre class="diff" aria-label="Config diff, desired to effective" tabindex="0">${diff.map((l) => html`<span class="${l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : l.startsWith("@@") ? "hunk" : ""}">${l}</span>\n`)}</pre>` : ""}
</section>
<section aria-labelledby="h-conn"><h2 id="h-conn">Connection history</h2>
${history.length ? html`<ol class="conn">${history.map((e) => html`<li>${when(e.at)} ${e.type}${e.transport ? ` over ${e.transport}` : ""}${e.reason ? ` (${e.reason})` : ""}</li>`)}</ol>` : html`<p>Last connected ${when(v.lastConnectedAt)}, last disconnected ${when(v.lastDisconnectedAt)}.</p>`}
</section>`;
}
