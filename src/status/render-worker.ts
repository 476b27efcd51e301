/**
 * Entry point of the status render worker thread (see agent-render.ts): answers each
 * `{ id, jobs, options }` with `{ id, results }`.
 */
import { parentPort } from "node:worker_threads";
import { Marker, Redactor } from "../redact/index.js";
import { compileStatusSchemas } from "../validate/status-schemas.js";
import type { RenderJob } from "./agent-render.js";
import type { AgentStatusOptions } from "./agent-status.js";
import { renderJobs } from "./render-jobs.js";

// Compiled when the worker starts (AgentRenderer.warm), not in the first render.
compileStatusSchemas();

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
  const results = renderJobs(m.jobs, withRedactor(m.options));
  // Each payload has an ArrayBuffer of its own (encodeRecord): moved, not copied.
  const transfer: ArrayBuffer[] = [];
  for (const r of results)
    if ("payload" in r && r.payload.byteLength === r.payload.buffer.byteLength)
      transfer.push(r.payload.buffer as ArrayBuffer);
  parentPort?.postMessage({ id: m.id, results }, transfer);
});
