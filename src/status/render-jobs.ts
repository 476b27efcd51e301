/**
 * Renders agents' status files from snapshots (see agent-render.ts): the work the render
 * worker does, also used in-process where no worker can run.
 */
import {
  type AgentState,
  emptyAgentState,
  type ReportField,
  setReportField,
} from "../opamp/index.js";
import type { RenderJob, RenderResult } from "./agent-render.js";
import { type AgentStatusOptions, agentStatus } from "./agent-status.js";
import { encodeRecord } from "./pending-store.js";
import { renderStatusFile } from "./render.js";

/** Rebuilds a full AgentState (decoded report fields) from a snapshot. */
function restore(job: RenderJob): AgentState {
  const { encoded, ...scalars } = job.agent;
  const state: AgentState = Object.assign(
    emptyAgentState(job.uid, scalars.transport, scalars.lastSeenAt),
    scalars,
  );
  for (const [field, bytes] of Object.entries(encoded) as [ReportField, Uint8Array][]) {
    setReportField(state, field, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }
  return state;
}

export function renderJobs(
  jobs: readonly RenderJob[],
  options: AgentStatusOptions,
): RenderResult[] {
  return jobs.map((job) => {
    try {
      const { file, facts } = agentStatus(restore(job), job.placement, options);
      const content = renderStatusFile("agent", file, job.path);
      const { payload, digest } = encodeRecord({ uid: job.uid, path: job.path, content, facts });
      return { payload, digest };
    } catch (err) {
      return { error: (err as Error).message };
    }
  });
}
