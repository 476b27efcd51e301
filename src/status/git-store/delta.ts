/**
 * Git's delta format (the OFS_DELTA / REF_DELTA payload of a pack entry): a target built from
 * copies of ranges of a base and inserted literals.
 *
 *   header  varint(base size) varint(target size)
 *   copy    1oooosss + offset bytes (o bits) + size bytes (s bits); size 0 means 0x10000
 *   insert  0nnnnnnn + n literal bytes (1..127)
 *
 * The encoder indexes the base by 16-byte blocks (a rolling hash, first block wins) and scans
 * the target at every byte, extending each match backwards and forwards: a tree of 10,000
 * entries with 100 changed entries becomes a delta of a few kilobytes in a few milliseconds.
 */
const W = 16;
const MULT = 0x01000193;

function varint(n: number, out: number[]): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** MULT^(W-1) mod 2^32, to roll the oldest byte out. */
const OUT_FACTOR = (() => {
  let f = 1;
  for (let i = 0; i < W - 1; i++) f = Math.imul(f, MULT);
  return f;
})();

function hashAt(buf: Uint8Array, at: number): number {
  let h = 0;
  for (let k = 0; k < W; k++) h = (Math.imul(h, MULT) + (buf[at + k] as number)) | 0;
  return h;
}

class Emitter {
  readonly out: number[] = [];
  readonly lit: number[] = [];

  literal(byte: number): void {
    this.lit.push(byte);
  }

  flushLiterals(): void {
    for (let i = 0; i < this.lit.length; i += 127) {
      const chunk = this.lit.slice(i, i + 127);
      this.out.push(chunk.length, ...chunk);
    }
    this.lit.length = 0;
  }

  copy(offset: number, size: number): void {
    this.flushLiterals();
    let off = offset;
    let left = size;
    while (left > 0) {
      const n = Math.min(left, 0xffffff);
      const bytes: number[] = [];
      let op = 0x80;
      for (let b = 0; b < 4; b++) {
        const v = Math.floor(off / 2 ** (8 * b)) & 0xff;
        if (v !== 0) {
          op |= 1 << b;
          bytes.push(v);
        }
      }
      for (let b = 0; b < 3; b++) {
        const v = (n >> (8 * b)) & 0xff;
        if (v !== 0) {
          op |= 0x10 << b;
          bytes.push(v);
        }
      }
      this.out.push(op, ...bytes);
      off += n;
      left -= n;
    }
  }
}

/** The delta that turns `base` into `target`. */
export function createDelta(base: Uint8Array, target: Uint8Array): Buffer {
  const e = new Emitter();
  varint(base.length, e.out);
  varint(target.length, e.out);
  const index = new Map<number, number>();
  for (let i = 0; i + W <= base.length; i += W) {
    const h = hashAt(base, i);
    if (!index.has(h)) index.set(h, i);
  }
  let j = 0;
  let h = target.length >= W ? hashAt(target, 0) : 0;
  while (j < target.length) {
    if (j + W <= target.length) {
      const at = index.get(h);
      if (at !== undefined && equalRun(base, at, target, j, W)) {
        let s = at;
        let t = j;
        // Extend backwards into literals not yet emitted.
        while (s > 0 && e.lit.length > 0 && base[s - 1] === target[t - 1]) {
          s--;
          t--;
          e.lit.pop();
        }
        let end = j + W;
        let send = at + W;
        while (end < target.length && send < base.length && base[send] === target[end]) {
          end++;
          send++;
        }
        e.copy(s, end - t);
        j = end;
        if (j + W <= target.length) h = hashAt(target, j);
        continue;
      }
    }
    e.literal(target[j] as number);
    if (j + W < target.length) {
      h =
        (Math.imul(h - Math.imul(target[j] as number, OUT_FACTOR), MULT) +
          (target[j + W] as number)) |
        0;
    }
    j++;
  }
  e.flushLiterals();
  return Buffer.from(e.out);
}

function equalRun(a: Uint8Array, ai: number, b: Uint8Array, bi: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[ai + k] !== b[bi + k]) return false;
  return true;
}

function readVarint(d: Uint8Array, pos: { i: number }): number {
  let v = 0;
  let shift = 0;
  for (;;) {
    const b = d[pos.i++];
    if (b === undefined) throw new Error("truncated delta header");
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return v;
  }
}

/** Applies a delta to its base (throws on a malformed delta or a size mismatch). */
export function applyDelta(base: Uint8Array, delta: Uint8Array): Buffer {
  const pos = { i: 0 };
  if (readVarint(delta, pos) !== base.length) throw new Error("delta base size mismatch");
  const size = readVarint(delta, pos);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  while (pos.i < delta.length) {
    const op = delta[pos.i++] as number;
    if (op & 0x80) {
      let off = 0;
      let n = 0;
      for (let b = 0; b < 4; b++)
        if (op & (1 << b)) off += (delta[pos.i++] as number) * 2 ** (8 * b);
      for (let b = 0; b < 3; b++) if (op & (0x10 << b)) n |= (delta[pos.i++] as number) << (8 * b);
      if (n === 0) n = 0x10000;
      if (off + n > base.length || o + n > size) throw new Error("delta copy out of range");
      out.set(base.subarray(off, off + n), o);
      o += n;
    } else if (op > 0) {
      if (pos.i + op > delta.length || o + op > size) throw new Error("delta insert out of range");
      out.set(delta.subarray(pos.i, pos.i + op), o);
      pos.i += op;
      o += op;
    } else {
      throw new Error("delta opcode 0 is reserved");
    }
  }
  if (o !== size) throw new Error("delta result size mismatch");
  return out;
}
