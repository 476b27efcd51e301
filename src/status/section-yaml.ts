/**
 * YAML of a status file written one top-level section at a time, each section's text
 * remembered by its value: across a fleet most sections of agents' files are equal (the same
 * health tree, capabilities, remote-config state, components, effective config within a group),
 * and writing YAML is most of what rendering an agent costs, so a connect burst or a flush of
 * thousands of agents writes each distinct section once.
 *
 * Contract: `sectionYaml(value)` is byte for byte `stringifyYaml(value)` for any plain object
 * of JSON-compatible values (a block map's pairs are written independently and joined by line
 * breaks, so the document is its sections' texts concatenated). A section is looked up by its
 * key and JSON text; a value JSON cannot tell apart from another (-0, non-finite numbers,
 * non-plain objects) is written without the memo.
 *
 * Memory: per thread (each render worker has its own), at most MEMO_CHARS characters of
 * remembered YAML plus their keys (keys over 16 KiB are replaced by their SHA-256), the least
 * recently used forgotten first; a section longer than MAX_SECTION_CHARS is not remembered.
 * Not for concurrent use across threads (it is module state of the thread that renders).
 */
import { createHash } from "node:crypto";
import { stringifyYaml } from "../validate/yaml-write.js";

/**
 * Characters of YAML text and keys the memo keeps (~1 byte each for ASCII). Small on purpose:
 * sections unique to one agent (its description) pass through it, and it is held per render
 * worker; the sections that repeat are refreshed by every hit and stay.
 */
const MEMO_CHARS = 1024 * 1024;
/** Sections longer than this (YAML characters) are written every time, not remembered. */
const MAX_SECTION_CHARS = 64 * 1024;
/**
 * JSON keys longer than this are remembered by their digest. A Map hashes a key string once
 * and compares it on a hit; a SHA-256 per render of a Collector's health tree (~1.5 KB of
 * JSON, a hit nearly always) was ~5 % of a render's profile, so keys of a few KB stay as
 * they are (their characters count against MEMO_CHARS like the YAML's).
 */
const MAX_KEY_CHARS = 16 * 1024;

const memo = new Map<string, string>();
let memoChars = 0;

/**
 * Counters for tests and benchmarks: sections found in the memo, sections written, and the
 * characters the memo holds now (YAML and keys).
 */
export const sectionYamlStats = { hits: 0, misses: 0, chars: 0 };

/** `stringifyYaml(value)`, with each top-level section's text remembered (see the file comment). */
export function sectionYaml(value: Record<string, unknown>): string {
  let out = "";
  let sections = 0;
  for (const key of Object.keys(value)) {
    const section = value[key];
    // stringifyYaml leaves out pairs whose value is undefined.
    if (section === undefined) continue;
    sections++;
    out += sectionText(key, section);
  }
  // An empty map is a flow "{}" document, not zero sections.
  return sections === 0 ? stringifyYaml(value) : out;
}

function sectionText(key: string, section: unknown): string {
  const write = () => stringifyYaml({ [key]: section });
  const json = exactJson(section);
  if (json === undefined) return write();
  let memoKey = `${key}\0${json}`;
  if (memoKey.length > MAX_KEY_CHARS)
    memoKey = `#${createHash("sha256").update(memoKey).digest("base64")}`;
  const known = memo.get(memoKey);
  if (known !== undefined) {
    sectionYamlStats.hits++;
    // Most recently used last: eviction takes the oldest first.
    memo.delete(memoKey);
    memo.set(memoKey, known);
    return known;
  }
  sectionYamlStats.misses++;
  const text = write();
  if (text.length <= MAX_SECTION_CHARS) remember(memoKey, text);
  return text;
}

function remember(key: string, text: string): void {
  memo.set(key, text);
  memoChars += text.length + key.length;
  for (const [oldKey, oldText] of memo) {
    if (memoChars <= MEMO_CHARS) break;
    memo.delete(oldKey);
    memoChars -= oldText.length + oldKey.length;
  }
  sectionYamlStats.chars = memoChars;
}

/** Deeper nesting than this is written without the memo (and a cycle never loops here). */
const MAX_EXACT_DEPTH = 256;

/**
 * The JSON of `value`, or undefined when JSON would not tell it apart from a value written
 * differently as YAML: -0 and non-finite numbers, and anything but plain objects, arrays,
 * strings, finite numbers, booleans and null (a Date or a Map would be written otherwise, and
 * so would an object with its own toJSON). Checked by a walk before a plain JSON.stringify: a
 * replacer function costs a call per value, ~3× the walk.
 */
function exactJson(value: unknown): string | undefined {
  // What passes the walk (bounded depth: no cycle, no BigInt) cannot make stringify throw.
  return isExact(value, 0) ? JSON.stringify(value) : undefined;
}

function isExact(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object":
      break;
    default:
      return false;
  }
  if (depth >= MAX_EXACT_DEPTH) return false;
  if (Array.isArray(value)) {
    // A hole or undefined is JSON null; YAML writes it as null too, but stay strict.
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined || !isExact(item, depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  if (typeof record.toJSON === "function") return false;
  for (const key of Object.keys(record)) {
    const item = record[key];
    // A pair whose value is undefined is left out by JSON and by YAML alike.
    if (item !== undefined && !isExact(item, depth + 1)) return false;
  }
  return true;
}
