/**
 * ComponentHealth read on the wire: checked, counted and judged by meaning without decoding
 * it into objects. A Collector reports a tree of tens of components, each with two 64-bit
 * timestamps, at every connect and on every status change; decoded (an object per component,
 * a Long per timestamp) and turned into a canonical string, it allocated more than the rest of
 * a first report (~50 KB of ~160 KB per connecting agent, bench:serve), all garbage.
 *
 * What a report means is `healthy`, `status`, `last_error`, `attributes` (their encoding as
 * sent) and the component tree (its keys and, recursively, the same of every component); the
 * timestamps are not part of it, so a Collector re-reporting StatusOK with a new
 * `status_time_unix_nano` means nothing new. Map keys are sorted, so the random map order of
 * Go's protobuf encoder does not read as a change either; a key sent twice keeps its last
 * value, as protobuf decoders do. Components deeper than MAX_HEALTH_DEPTH count as "present".
 */
import { createHash } from "node:crypto";
import { MalformedMessageError } from "./errors.js";
import { WireError, WireReader, WireType } from "./wire-reader.js";

/** Components nested deeper than this are compared as "present" only (bounds the recursion). */
export const MAX_HEALTH_DEPTH = 32;

/**
 * The deepest component a report may nest (the root is at 0): protobufjs decodes at most 100
 * levels of AgentToServer (whose health is at 1), and stored health is decoded when read (the
 * admin API, status files), so a deeper tree is refused as malformed, as decoding it was.
 */
export const MAX_HEALTH_NESTING = 99;

// ComponentHealth's field numbers (opamp.proto) read here; WIRE_TYPES gives each field's wire
// type by number (2 and 5 are the timestamps, skipped).
const HEALTHY = 1;
const LAST_ERROR = 3;
const STATUS = 4;
const COMPONENTS = 6;
const ATTRIBUTES = 7;
const WIRE_TYPES = [
  -1,
  WireType.Varint,
  WireType.Fixed64,
  WireType.Delimited,
  WireType.Delimited,
  WireType.Fixed64,
  WireType.Delimited,
  WireType.Delimited,
];
// A map entry's fields.
const KEY = 1;
const VALUE = 2;

/** The field number of `tag`, after checking a known field came with its declared wire type. */
function fieldOf(tag: number, types: readonly number[]): number {
  const field = Math.floor(tag / 8);
  const expected = types[field];
  if (expected !== undefined && expected >= 0 && tag % 8 !== expected)
    throw new WireError(`field ${field} has wire type ${tag % 8}`);
  return field;
}

const ENTRY_TYPES = [-1, WireType.Delimited, WireType.Delimited];

/** Runs `walk`, turning a wire error into the error agents are answered with. */
function checked<T>(walk: () => T): T {
  try {
    return walk();
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    throw new MalformedMessageError(`health is not valid protobuf: ${err.message}`, {}, err);
  }
}

export interface HealthScan {
  /** Components, the root included (a key sent twice counts twice); past `maxComponents` the scan stops and says max + 1. */
  components: number;
  /**
   * A status or last_error longer than `maxTextBytes`, or attributes on a component: the
   * decoded report must be checked and cut (agent-limits.ts) before it is stored.
   */
  needsDecode: boolean;
}

/**
 * Checks that `bytes` are a well-formed ComponentHealth (every nested component included)
 * and counts its components, iteratively: the agent controls the depth. No object per
 * component. Throws MalformedMessageError on a malformed encoding.
 */
export function scanHealth(
  bytes: Uint8Array,
  maxComponents: number,
  maxTextBytes: number,
): HealthScan {
  return checked(() => {
    const r = new WireReader(bytes);
    const entry = new WireReader(bytes);
    /** Per component to read: start, end, depth (the root's is 0). */
    const ranges: number[] = [0, bytes.length, 0];
    let components = 1;
    let needsDecode = false;
    while (ranges.length > 0) {
      const depth = ranges.pop() as number;
      r.end = ranges.pop() as number;
      r.pos = ranges.pop() as number;
      while (!r.done) {
        const tag = r.tag();
        const field = fieldOf(tag, WIRE_TYPES);
        if (field === LAST_ERROR || field === STATUS) {
          const start = r.delimited();
          if (r.pos - start > maxTextBytes) needsDecode = true;
        } else if (field === COMPONENTS) {
          entry.pos = r.delimited();
          entry.end = r.pos;
          let value = -1;
          let valueEnd = -1;
          while (!entry.done) {
            const t = entry.tag();
            if (fieldOf(t, ENTRY_TYPES) === VALUE) {
              // protobufjs decodes every copy of an entry's value and keeps the last: a
              // second copy goes to the full decode, which decides (this scan reads one).
              if (value >= 0) throw new WireError("a component's value sent twice");
              value = entry.delimited();
              valueEnd = entry.pos;
            } else entry.skip(t);
          }
          if (++components > maxComponents) return { components, needsDecode };
          if (value < 0) continue;
          if (depth + 1 > MAX_HEALTH_NESTING)
            throw new WireError(`components nested deeper than ${MAX_HEALTH_NESTING}`);
          ranges.push(value, valueEnd, depth + 1);
        } else if (field === ATTRIBUTES) {
          r.delimited();
          needsDecode = true;
        } else {
          r.skip(tag);
        }
      }
    }
    return { components, needsDecode };
  });
}

/** The root's `healthy` and `last_error` of an encoded ComponentHealth (its tree not read). */
export function healthTop(bytes: Uint8Array): { healthy: boolean; lastError: string } {
  return checked(() => {
    const r = new WireReader(bytes);
    let healthy = false;
    let error: [number, number] | undefined;
    while (!r.done) {
      const tag = r.tag();
      const field = fieldOf(tag, WIRE_TYPES);
      if (field === HEALTHY) healthy = r.uint32() !== 0;
      else if (field === LAST_ERROR) error = [r.delimited(), r.pos];
      else r.skip(tag);
    }
    const lastError = error
      ? Buffer.from(bytes.buffer, bytes.byteOffset + error[0], error[1] - error[0]).toString("utf8")
      : "";
    return { healthy, lastError };
  });
}

/**
 * A short digest of what an encoded ComponentHealth means (see the file comment): equal
 * meanings give equal digests. Linear in the size of the report. Throws
 * MalformedMessageError on a malformed encoding.
 */
export function healthDigest(bytes: Uint8Array): string {
  return checked(() => {
    const canon = new Canonical(bytes);
    canon.node(0, bytes.length, 0);
    return canon.digest();
  });
}

/**
 * The canonical form of a report's meaning, written into one reused buffer, then hashed. It
 * runs per health report compared, so it allocates little: offsets in numbers, arrays only
 * for components that have attributes or children, short spans copied byte by byte.
 */
class Canonical {
  static #out = Buffer.allocUnsafe(16 * 1024);
  readonly #src: Uint8Array;
  readonly #r: WireReader;
  #len = 0;

  constructor(bytes: Uint8Array) {
    this.#src = bytes;
    this.#r = new WireReader(bytes);
  }

  /** Writes the meaning of the component encoded in [start, end) at `depth`. */
  node(start: number, end: number, depth: number): void {
    const r = this.#r;
    r.pos = start;
    r.end = end;
    let healthy = 0;
    let statusStart = 0;
    let statusEnd = 0;
    let errorStart = 0;
    let errorEnd = 0;
    let attributes: number[] | undefined;
    /** Per map entry: key start, key end, value start (-1: none), value end. */
    let entries: number[] | undefined;
    while (!r.done) {
      const tag = r.tag();
      const field = fieldOf(tag, WIRE_TYPES);
      if (field === HEALTHY) healthy = r.uint32() !== 0 ? 1 : 0;
      else if (field === STATUS) {
        statusStart = r.delimited();
        statusEnd = r.pos;
      } else if (field === LAST_ERROR) {
        errorStart = r.delimited();
        errorEnd = r.pos;
      } else if (field === ATTRIBUTES) {
        attributes ??= [];
        attributes.push(r.delimited(), r.pos);
      } else if (field === COMPONENTS) {
        entries ??= [];
        this.#entry(entries);
      } else r.skip(tag);
    }
    this.#byte(healthy);
    this.#span(statusStart, statusEnd);
    this.#span(errorStart, errorEnd);
    this.#u32(attributes ? attributes.length / 2 : 0);
    if (attributes)
      for (let i = 0; i < attributes.length; i += 2)
        this.#span(attributes[i] as number, attributes[i + 1] as number);
    if (!entries) {
      this.#u32(0);
      return;
    }
    const order = this.#sortedEntries(entries);
    this.#u32(order.length);
    for (const i of order) {
      this.#span(entries[i] as number, entries[i + 1] as number);
      if (depth >= MAX_HEALTH_DEPTH) {
        this.#byte(0);
        continue;
      }
      this.#byte(1);
      const value = entries[i + 2] as number;
      // An entry without a value is an empty component, as decoders read it.
      if (value < 0) this.node(0, 0, depth + 1);
      else this.node(value, entries[i + 3] as number, depth + 1);
    }
  }

  /** Reads the map entry at the reader into `entries`; the reader moves past it. */
  #entry(entries: number[]): void {
    // (Nesting was checked when the report was scanned; recursion stops at MAX_HEALTH_DEPTH.)
    const r = this.#r;
    const start = r.delimited();
    const end = r.pos;
    const outer = r.end;
    r.pos = start;
    r.end = end;
    let keyStart = start;
    let keyEnd = start;
    let value = -1;
    let valueEnd = -1;
    while (!r.done) {
      const t = r.tag();
      const f = fieldOf(t, ENTRY_TYPES);
      if (f === KEY) {
        keyStart = r.delimited();
        keyEnd = r.pos;
      } else if (f === VALUE) {
        value = r.delimited();
        valueEnd = r.pos;
      } else r.skip(t);
    }
    r.end = outer;
    entries.push(keyStart, keyEnd, value, valueEnd);
  }

  /** Entry offsets (into `entries`) in key order, a repeated key keeping its last entry. */
  #sortedEntries(entries: number[]): number[] {
    const order: number[] = [];
    for (let i = 0; i < entries.length; i += 4) order.push(i);
    if (order.length < 2) return order;
    // Array.prototype.sort is stable: equal keys stay in the order they were sent.
    order.sort((a, b) => this.#compareKeys(entries, a, b));
    const kept: number[] = [];
    for (let n = 0; n < order.length; n++) {
      const next = order[n + 1];
      if (next === undefined || this.#compareKeys(entries, order[n] as number, next) !== 0)
        kept.push(order[n] as number);
    }
    return kept;
  }

  /** Bytewise order of two entries' keys. */
  #compareKeys(entries: number[], a: number, b: number): number {
    const src = this.#src;
    let i = entries[a] as number;
    let j = entries[b] as number;
    const aEnd = entries[a + 1] as number;
    const bEnd = entries[b + 1] as number;
    for (; i < aEnd && j < bEnd; i++, j++) {
      const d = (src[i] as number) - (src[j] as number);
      if (d !== 0) return d;
    }
    return aEnd - i - (bEnd - j);
  }

  #ensure(n: number): Buffer {
    let out = Canonical.#out;
    if (this.#len + n > out.length) {
      const grown = Buffer.allocUnsafe(Math.max(out.length * 2, this.#len + n));
      out.copy(grown, 0, 0, this.#len);
      out = grown;
      Canonical.#out = out;
    }
    return out;
  }

  #byte(b: number): void {
    this.#ensure(1)[this.#len++] = b;
  }

  #u32(n: number): void {
    this.#ensure(4).writeUInt32LE(n, this.#len);
    this.#len += 4;
  }

  #span(start: number, end: number): void {
    const n = end - start;
    this.#u32(n);
    const out = this.#ensure(n);
    const src = this.#src;
    // Spans are short (keys, statuses): a loop costs less than a view per copy.
    if (n <= 64) for (let i = start; i < end; i++) out[this.#len++] = src[i] as number;
    else {
      out.set(src.subarray(start, end), this.#len);
      this.#len += n;
    }
  }

  digest(): string {
    const out = Canonical.#out;
    const digest = createHash("sha256").update(out.subarray(0, this.#len)).digest("base64");
    // A large report grew the buffer: give that memory back rather than keep it for good.
    if (out.length > 256 * 1024) Canonical.#out = Buffer.allocUnsafe(16 * 1024);
    return digest;
  }
}
