/**
 * Entry point of the status render worker thread (see agent-render.ts): answers each
 * `{ id, jobs, options }` with `{ id, results }`.
 */
import { parentPort } from "node:worker_threads";
import type { RenderJob } from "./agent-render.js";
import type { AgentStatusOptions } from "./agent-status.js";
import { renderJobs } from "./render-jobs.js";

parentPort?.on("message", (m: { id: number; jobs: RenderJob[]; options: AgentStatusOptions }) => {
  parentPort?.postMessage({ id: m.id, results: renderJobs(m.jobs, m.options) });
});
