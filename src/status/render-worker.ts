/**
 * Entry point of the status render worker thread (see agent-render.ts): answers each
 * `{ id, jobs, options }` with `{ id, results }`.
 */
import { parentPort } from "node:worker_threads";
import { Marker, Redactor } from "../redact/index.js";
import type { RenderJob } from "./agent-render.js";
import type { AgentStatusOptions } from "./agent-status.js";
import { renderJobs } from "./render-jobs.js";

/** The redactor of the last key seen (the service's key changes at most once, at start). */
let keyed: { key: string; redactor: Redactor } | undefined;

function withRedactor(options: AgentStatusOptions): AgentStatusOptions {
  const key = options.redactionKey;
  if (!key) return options;
  const hex = Buffer.from(key).toString("hex");
  if (keyed?.key !== hex) keyed = { key: hex, redactor: new Redactor(new Marker(key)) };
  return { ...options, redactor: keyed.redactor };
}

parentPort?.on("message", (m: { id: number; jobs: RenderJob[]; options: AgentStatusOptions }) => {
  parentPort?.postMessage({ id: m.id, results: renderJobs(m.jobs, withRedactor(m.options)) });
});
