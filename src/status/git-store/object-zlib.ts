/**
 * zlib for the status store's objects (pack entries and loose objects), sized to each object.
 *
 * `zlib.deflateSync` with its defaults allocates a 256 KiB stream (32 KiB window, 64 K hash
 * chains) and a 16 KiB output buffer per call, for agent files of one or two kilobytes. A big
 * flush packs thousands of them: bench:serve measured 3,000 such calls leaving ~25 MB more
 * resident (freed zlib streams fragment malloc's heap, which glibc does not give back). Here
 * the window covers the object and no more (the output is the same bytes up to the smaller
 * header: a window larger than the input finds no further match), the hash table and output
 * buffer scale with it, and an inflate whose size the pack entry states writes into one buffer
 * of that size. Any zlib reader (Git, isomorphic-git) reads the streams: a stream's header
 * names its window.
 */
import { deflateSync, inflateSync } from "node:zlib";

/** zlib's lookahead beyond the window (MIN_LOOKAHEAD): a window this much larger than the input sees all of it. */
const LOOKAHEAD = 262;

/** Deflates one object; `level` as zlib's (default 6). */
export function deflateObject(data: Uint8Array, level = 6): Buffer {
  let windowBits = 9; // zlib's smallest deflate window
  while (windowBits < 15 && 1 << windowBits < data.length + LOOKAHEAD) windowBits++;
  return deflateSync(data, {
    level,
    windowBits,
    memLevel: Math.min(8, windowBits - 6),
    // Deflate's worst case (stored blocks) plus header and checksum: usually one buffer.
    chunkSize: data.length + (data.length >> 3) + 64,
  });
}

/**
 * Inflates one object; `size`, when known (a pack entry's header states it), sizes the output
 * buffer so that the result is one allocation of that size. A wrong `size` costs a copy, not
 * a wrong result.
 */
export function inflateObject(data: Uint8Array, size?: number): Buffer {
  // 64 to spare: an output buffer filled exactly makes zlib ask for a second one.
  return inflateSync(data, size === undefined ? {} : { chunkSize: size + 64 });
}
