/**
 * A pure heartbeat recognised in the received bytes, without protobufjs: most of the traffic
 * of a connected fleet is AgentToServer messages holding only the instance uid, the sequence
 * number and the capability word, and decoding each into objects (then bigints, then a
 * 15-field message) costs more than answering it.
 *
 * The recogniser is deliberately narrow: whatever it does not accept takes the general path
 * (codec.ts decodeAgentToServer), which then decides as it always did. It accepts only
 * fields 1 (instance_uid, exactly 16 bytes), 2 (sequence_num), 4 (capabilities) and 10
 * (flags, only when 0), each at most once, in any order, varints of at most 7 bytes (values
 * below 2^49, exact as JS numbers); any other field, a repeated one, a longer varint or a
 * truncated message answers undefined.
 */

/** What parseHeartbeat found. One object, reused by every call: read it before the next. */
export interface HeartbeatFields {
  /** Index in the bytes of the 16 uid bytes. */
  uidOffset: number;
  sequenceNum: number;
  capabilities: number;
}

const found: HeartbeatFields = { uidOffset: 0, sequenceNum: 0, capabilities: 0 };

/** Tags of the accepted fields: (field number << 3) | wire type. */
const UID_TAG = 0x0a; // 1, length-delimited
const SEQUENCE_TAG = 0x10; // 2, varint
const CAPABILITIES_TAG = 0x20; // 4, varint
const FLAGS_TAG = 0x50; // 10, varint

/** Longest varint accepted: 7 × 7 bits = 49 bits, exact in a double. */
const MAX_VARINT_BYTES = 7;

/**
 * The fields of the pure heartbeat encoded in `bytes` from `start` to the end, or undefined
 * when the bytes are anything else (see the file comment).
 */
export function parseHeartbeat(bytes: Uint8Array, start: number): HeartbeatFields | undefined {
  const end = bytes.length;
  let i = start;
  let seen = 0;
  let uidOffset = -1;
  let sequenceNum = 0;
  let capabilities = 0;
  while (i < end) {
    const tag = bytes[i++] as number;
    if (tag === UID_TAG) {
      if (seen & 1 || bytes[i] !== 16 || i + 17 > end) return undefined;
      seen |= 1;
      uidOffset = i + 1;
      i += 17;
      continue;
    }
    const bit = tag === SEQUENCE_TAG ? 2 : tag === CAPABILITIES_TAG ? 4 : tag === FLAGS_TAG ? 8 : 0;
    if (bit === 0 || seen & bit) return undefined;
    seen |= bit;
    let value = 0;
    let scale = 1;
    for (let n = 0; ; n++) {
      if (n === MAX_VARINT_BYTES || i >= end) return undefined;
      const b = bytes[i++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    if (bit === 2) sequenceNum = value;
    else if (bit === 4) capabilities = value;
    else if (value !== 0) return undefined;
  }
  if (uidOffset < 0) return undefined;
  found.uidOffset = uidOffset;
  found.sequenceNum = sequenceNum;
  found.capabilities = capabilities;
  return found;
}

const HEX = "0123456789abcdef";

/**
 * Whether the 16 bytes at `offset` are the canonical uid string `uid` (instance-uid.ts:
 * lowercase, hyphens after hex digits 8, 12, 16 and 20), compared without building a string.
 */
export function uidBytesMatch(bytes: Uint8Array, offset: number, uid: string): boolean {
  if (uid.length !== 36 || offset + 16 > bytes.length) return false;
  let c = 0;
  for (let k = 0; k < 16; k++) {
    if (c === 8 || c === 13 || c === 18 || c === 23) c++;
    const b = bytes[offset + k] as number;
    if (uid.charCodeAt(c) !== HEX.charCodeAt(b >> 4)) return false;
    if (uid.charCodeAt(c + 1) !== HEX.charCodeAt(b & 15)) return false;
    c += 2;
  }
  return true;
}
