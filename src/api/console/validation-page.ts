/**
 * The validation page (`/validation`): the findings of the last commit read: a stalled head's
 * errors and warnings, else the served commit's warnings; each with its file:line, linked to
 * the file at that commit on the Git host when it is one we know.
 */
import { html } from "hono/html";
import type { Finding } from "../../validate/index.js";
import type { ValidationState } from "../backend.js";
import { validationSummary } from "./fleet-page.js";
import type { GitWeb } from "./git-links.js";

function findingsTable(commit: string, findings: readonly Finding[], web: GitWeb | undefined) {
  if (findings.length === 0) return html`<p>No findings.</p>`;
  return html`<div class="scroll"><table class="findings"><thead><tr><th scope="col">Where</th><th scope="col">Severity</th><th scope="col">Code</th><th scope="col">Message</th></tr></thead>
<tbody>${findings.map((f) => {
    const where = `${f.file}:${f.line}`;
    return html`<tr class="${f.severity}"><td>${web ? html`<a href="${web.file(commit, f.file, f.line)}" rel="noreferrer"><code>${where}</code></a>` : html`<code>${where}</code>`}</td><td>${f.severity}</td><td><code>${f.code}</code></td><td>${f.message}</td></tr>`;
  })}</tbody></table></div>`;
}

export function validationBody(v: ValidationState | undefined, web: GitWeb | undefined) {
  const commit = v?.stalled?.commit ?? v?.serving;
  const findings = v?.stalled ? v.stalled.findings : (v?.warnings ?? []);
  return html`<h1>Validation</h1>
${validationSummary(v)}
${commit ? html`<section aria-labelledby="h-findings"><h2 id="h-findings">Findings of ${commit.slice(0, 12)}</h2>${findingsTable(commit, findings, web)}</section>` : ""}`;
}
