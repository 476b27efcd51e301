/**
 * Writing a flush's new blobs as one verified pack (Packer.packBlobs): each blob a delta
 * against the previous one when that is smaller than half of it (agent files of one folder
 * differ in a few lines), chains at most `maxDepth` long, then the pack read back in full
 * (removed, and PackFailedError thrown, when it does not). Pure CPU and file work on
 * `packDir`, with no state of its own: it runs on a status render worker
 * (AgentRenderer.packBlobs) or on the calling thread alike.
 */
import { PackFailedError } from "../errors.js";
import { createDelta } from "./delta.js";
import { verifyOrRemovePack } from "./pack-verify.js";
import { PackWriter } from "./pack-write.js";

/** A blob to pack: its id (hashObject("blob", content)) and content. */
export interface PackBlob {
  oid: string;
  content: Uint8Array;
}

/** Writes `blobs` (distinct ids) into one new pack in `packDir`; returns its name. */
export async function writeBlobPack(
  packDir: string,
  blobs: readonly PackBlob[],
  maxDepth: number,
): Promise<string> {
  const writer = new PackWriter(packDir);
  let name: string;
  try {
    await writer.open(blobs.length);
    let prev: { oid: string; content: Uint8Array; depth: number } | undefined;
    for (const { oid, content } of blobs) {
      let depth = 0;
      const delta = prev && prev.depth < maxDepth ? createDelta(prev.content, content) : undefined;
      if (prev && delta && delta.length < content.length / 2) {
        await writer.addDelta(oid, prev.oid, delta);
        depth = prev.depth + 1;
      } else {
        await writer.addObject(oid, "blob", content);
      }
      prev = { oid, content, depth };
    }
    name = await writer.finish();
  } catch (err) {
    await writer.abort();
    throw new PackFailedError(`writing a pack of ${blobs.length} new files failed`, err);
  }
  await verifyOrRemovePack(packDir, name);
  return name;
}
