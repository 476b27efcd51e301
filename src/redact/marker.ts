/**
 * What a redacted value becomes: `<redacted:3fa2c1>`, six hex digits of an HMAC-SHA256 of the
 * value under a key the service holds. Equal secrets give equal markers, so drift between
 * agents stays visible; without the key nobody can test a guess against a marker (a plain
 * hash of a short password could be reversed with a dictionary). Six hex digits (24 bits) are
 * enough to tell values apart in a status file and too few to identify a value even with the
 * key in hand beyond a guess list.
 *
 * The key is 32 random bytes. The service keeps it in Redis (src/status/redaction-key.ts)
 * so every replica writes the same markers; losing it changes every marker once.
 */
import { createHmac, randomBytes } from "node:crypto";

export const MARKER_PATTERN = /<redacted(?::[0-9a-f]{6})?>/;

/** Keyed markers for redacted values. */
export class Marker {
  readonly #key: Buffer;

  /** `key`: at least 16 bytes (the service uses 32 random bytes). */
  constructor(key: Uint8Array) {
    if (key.length < 16) throw new RangeError("a redaction key needs at least 16 bytes");
    this.#key = Buffer.from(key);
  }

  /** A marker with a fresh random key (tests, and the validator, whose output has no markers). */
  static random(): Marker {
    return new Marker(randomBytes(32));
  }

  /** `<redacted:xxxxxx>` for `value`. */
  mark(value: string): string {
    return `<redacted:${this.digest(value).slice(0, 6)}>`;
  }

  /** The full keyed digest of `value` (hex, 64 digits): for whole-body hashes. */
  digest(value: string | Uint8Array): string {
    return createHmac("sha256", this.#key).update(value).digest("hex");
  }
}
