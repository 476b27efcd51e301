/**
 * Entry point of a blob-pack worker thread (blob-pack-thread.ts): writes the pack its
 * `workerData` describes and posts `{ name }`, or `{ error }` when the pack failed.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type PackBlob, writeBlobPack } from "./blob-pack.js";

const { packDir, blobs, maxDepth } = workerData as {
  packDir: string;
  blobs: PackBlob[];
  maxDepth: number;
};
try {
  parentPort?.postMessage({ name: await writeBlobPack(packDir, blobs, maxDepth) });
} catch (err) {
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
  parentPort?.postMessage({ error: `${err instanceof Error ? err.message : String(err)}${cause}` });
}
