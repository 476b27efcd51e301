/**
 * A cursor over the protobuf wire format, for the walks that read an encoding without
 * decoding it into objects (report-spans.ts, health-wire.ts). Every read stays within
 * [pos, end) of `bytes`; a truncated or impossible encoding throws WireError, which each
 * caller turns into its own answer. No allocation per read.
 */

/** The encoding is truncated, or holds what the wire format cannot (the walk stops). */
export class WireError extends Error {}

export const WireType = {
  Varint: 0,
  Fixed64: 1,
  Delimited: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;

/** Groups nested deeper than this are refused (protobufjs' recursion limit). */
export const MAX_GROUP_NESTING = 100;

export class WireReader {
  constructor(
    readonly bytes: Uint8Array,
    public pos = 0,
    public end = bytes.length,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint, exact up to 2^53 (skipped values); throws past 10 bytes or `end`. */
  varint(): number {
    const bytes = this.bytes;
    let value = 0;
    let scale = 1;
    for (let n = 0; n < 10 && this.pos < this.end; n++) {
      const b = bytes[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new WireError("truncated or over-long varint");
  }

  /**
   * A varint of at most 5 bytes below 2^32: a tag, a length, a bool. protobufjs reads these
   * as uint32 (a longer varint makes it jump as if it had 10 bytes, and keeps only 32 bits),
   * so a walk that must agree with its decoder refuses anything else.
   */
  uint32(): number {
    const start = this.pos;
    const value = this.varint();
    if (this.pos - start > 5 || value >= 2 ** 32) throw new WireError("varint longer than 32 bits");
    return value;
  }

  /** A tag: field number × 8 + wire type. Field number 0 does not exist. */
  tag(): number {
    const tag = this.uint32();
    if (tag < 8) throw new WireError("field number 0");
    return tag;
  }

  /**
   * A length-delimited field's content: returns where it starts and moves past it (its end is
   * `pos` afterwards). Throws when the length runs past `end`.
   */
  delimited(): number {
    const length = this.uint32();
    const start = this.pos;
    if (length > this.end - start) throw new WireError("length runs past the end");
    this.pos = start + length;
    return start;
  }

  /**
   * Skips the value of a field read with `tag`: varint, fixed 64/32 bits, delimited, or a
   * group (to its matching end-group tag, nested groups included up to MAX_GROUP_NESTING, as
   * protobufjs skips them; iterative). Throws on an end-group without start and on wire
   * types 6 and 7.
   */
  skip(tag: number): void {
    const groups: number[] = [];
    let t = tag;
    for (;;) {
      const wireType = t % 8;
      if (wireType === WireType.Varint) this.varint();
      else if (wireType === WireType.Fixed64) this.#advance(8);
      else if (wireType === WireType.Fixed32) this.#advance(4);
      else if (wireType === WireType.Delimited) this.delimited();
      else if (wireType === WireType.StartGroup) {
        if (groups.length >= MAX_GROUP_NESTING) throw new WireError("groups nested too deep");
        groups.push(Math.floor(t / 8));
      } else if (wireType === WireType.EndGroup) {
        if (groups.pop() !== Math.floor(t / 8)) throw new WireError("unmatched end group");
      } else throw new WireError(`wire type ${wireType}`);
      if (groups.length === 0) return;
      t = this.tag();
    }
  }

  #advance(n: number): void {
    if (n > this.end - this.pos) throw new WireError("fixed-size value runs past the end");
    this.pos += n;
  }
}
