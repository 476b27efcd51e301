/**
 * Entry point of the status render worker thread (see agent-render.ts): answers each
 * `{ id, jobs, options }` with `{ id, results }`, and each `{ id, pack }` (a big flush's blob
 * pack, AgentRenderer.packBlobs) with `{ id, name }` or `{ id, error }`.
 */
import { parentPort } from "node:worker_threads";
import { Marker, Redactor } from "../redact/index.js";
import { compileStatusSchemas } from "../validate/status-schemas.js";
import type { BlobPackRequest, RenderRequest } from "./agent-render.js";
import type { AgentStatusOptions } from "./agent-status.js";
// Not through git-store/index.ts: that loads isomorphic-git into every worker.
import { writeBlobPack } from "./git-store/blob-pack.js";
import { renderJobs } from "./render-jobs.js";

/** A failure's message with its cause's (PackFailedError wraps what failed). */
function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return err instanceof Error && err.cause instanceof Error
    ? `${text}: ${err.cause.message}`
    : text;
}

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

parentPort?.on("message", async (m: RenderRequest | BlobPackRequest) => {
  if ("pack" in m) {
    const { packDir, blobs, maxDepth } = m.pack;
    try {
      parentPort?.postMessage({ id: m.id, name: await writeBlobPack(packDir, blobs, maxDepth) });
    } catch (err) {
      parentPort?.postMessage({ id: m.id, error: errorText(err) });
    }
    return;
  }
  const results = renderJobs(m.jobs, withRedactor(m.options));
  // Each payload has an ArrayBuffer of its own (encodeRecord): moved, not copied.
  const transfer: ArrayBuffer[] = [];
  for (const r of results)
    if ("payload" in r && r.payload.byteLength === r.payload.buffer.byteLength)
      transfer.push(r.payload.buffer as ArrayBuffer);
  parentPort?.postMessage({ id: m.id, results }, transfer);
});
