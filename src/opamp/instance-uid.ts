/**
 * Instance uids: 16 bytes on the wire, the canonical lowercase UUID string everywhere else
 * (Redis keys, events, file names later). Only strings made here are used as keys or paths.
 */
import { randomBytes } from "node:crypto";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Canonical form of a 16-byte uid; throws on any other length. */
export function uidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16)
    throw new RangeError(`instance uid must be 16 bytes, got ${bytes.length}`);
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The 16 bytes of a canonical uid string. */
export function uidToBytes(uid: string): Uint8Array {
  if (!isCanonicalUid(uid)) throw new RangeError(`not a canonical instance uid: ${uid}`);
  return new Uint8Array(Buffer.from(uid.replaceAll("-", ""), "hex"));
}

/** True for a lowercase, hyphenated 36-character UUID string. */
export function isCanonicalUid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A new UUIDv7 (time-ordered), as the specification recommends for instance uids. */
export function newInstanceUid(now: number = Date.now()): Uint8Array {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | ((bytes[6] as number) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f);
  return new Uint8Array(bytes);
}
