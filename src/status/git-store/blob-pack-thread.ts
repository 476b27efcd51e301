/**
 * writeBlobPack (blob-pack.ts) off the event loop. A big flush (a first flush, or the one
 * after a reconnect storm: every agent's file new) packs thousands of files: deltas, deflate
 * and the read-back cost ~200 ms per 1,000 agent files of CPU (bench:serve profile, issue
 * #15), during which the OpAMP port answered nobody. So each such pack is written by a worker
 * thread of its own (a flush of 1,000+ files is rare; the thread's start, ~30 ms, is off the
 * event loop too), which exits when done.
 *
 * A pack that fails in the worker fails as it would here (PackFailedError). Where the worker
 * cannot start or dies without an answer, the pack is written on this thread (a temporary
 * file it left is not a pack: Git ignores it, and the next pack's writer uses another name).
 */
import { Worker } from "node:worker_threads";
import { PackFailedError } from "../errors.js";
import { type PackBlob, writeBlobPack } from "./blob-pack.js";

const WORKER_URL = new URL("./blob-pack-worker.js", import.meta.url);

/** The pack's name, and whether a worker thread wrote it. */
export interface BlobPackResult {
  name: string;
  offThread: boolean;
}

export async function writeBlobPackOffThread(
  packDir: string,
  blobs: readonly PackBlob[],
  maxDepth: number,
  workerUrl: URL = WORKER_URL,
): Promise<BlobPackResult> {
  const answer = await inWorker(workerUrl, { packDir, blobs, maxDepth });
  if (answer && "name" in answer) return { name: answer.name, offThread: true };
  if (answer) throw new PackFailedError(answer.error);
  return { name: await writeBlobPack(packDir, blobs, maxDepth), offThread: false };
}

/** The worker's answer, or undefined when it could not start or died without one. */
function inWorker(
  url: URL,
  workerData: { packDir: string; blobs: readonly PackBlob[]; maxDepth: number },
): Promise<{ name: string } | { error: string } | undefined> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = new Worker(url, { workerData });
    } catch {
      resolve(undefined);
      return;
    }
    let answer: { name: string } | { error: string } | undefined;
    worker.once("message", (m: { name: string } | { error: string }) => {
      answer = m;
    });
    worker.once("error", () => {});
    worker.once("exit", () => resolve(answer));
  });
}
