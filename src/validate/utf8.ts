/**
 * Strict UTF-8 decoding with the position of the first invalid byte, which TextDecoder does
 * not report.
 */

const decoder = new TextDecoder("utf-8", { fatal: true });

export type DecodeResult =
  | { ok: true; text: string }
  | { ok: false; offset: number; byte: number; line: number; column: number };

/**
 * Decodes `bytes` (a leading BOM is dropped). On failure, gives the byte offset of the first
 * invalid sequence and its 1-based line and column (column counted in characters).
 */
export function decodeUtf8(bytes: Uint8Array): DecodeResult {
  try {
    return { ok: true, text: decoder.decode(bytes) };
  } catch {
    const offset = firstInvalidOffset(bytes);
    const prefix = decoder.decode(bytes.subarray(0, offset));
    const lineStart = prefix.lastIndexOf("\n") + 1;
    let line = 1;
    for (let i = 0; i < lineStart; i++) if (prefix.charCodeAt(i) === 10) line++;
    return {
      ok: false,
      offset,
      byte: bytes[offset] ?? 0,
      line,
      column: [...prefix.slice(lineStart)].length + 1,
    };
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence. */
export function firstInvalidOffset(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = b === 0xe0 ? 0xa0 : 0x80;
      if (b === 0xed) max = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = b === 0xf0 ? 0x90 : 0x80;
      if (b === 0xf4) max = 0x8f;
    } else {
      return i;
    }
    if (i + need >= n) return i; // truncated sequence
    const second = bytes[i + 1];
    if (second === undefined || second < min || second > max) return i;
    for (let k = 2; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return n;
}
