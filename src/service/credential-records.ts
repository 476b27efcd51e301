/**
 * What was issued to each agent, stored in Redis `<p>:agent-credentials` (uid → JSON) and
 * cached in this process: the last certificate (serial, validity, group, the agent's public
 * key and the PEM: none of it secret) and the last token minted (id, SHA-256 digest, group,
 * validity: never the token).
 *
 * The cache holds at most `maxCached` agents and evicts the least recently used one at a time,
 * so a fleet larger than the bound costs one Redis read per evicted agent's next message, not
 * one per message for everybody. Concurrency: one agent's messages are handled one at a time
 * (MessageHandler), so a record is read and written without a lock.
 */
import type { Redis } from "ioredis";
import { LruMap } from "../lru-map.js";

export interface CertRecord {
  serial: string;
  /** SHA-256 fingerprint of the certificate, lowercase hex (as identity.ts names it). */
  fingerprint?: string;
  notBefore: number;
  notAfter: number;
  /** When it was signed, ms since the epoch (notBefore is back-dated); absent in old records. */
  issuedAt?: number;
  group: string;
  /** SubjectPublicKeyInfo of the agent's key, base64: rotation re-signs the same key. */
  spki: string;
  pem: string;
}

export interface TokenRecord {
  id: string;
  digest: string;
  group: string;
  notBefore: number;
  notAfter: number;
}

export interface AgentRecord {
  cert?: CertRecord;
  token?: TokenRecord;
}

/** Default bound of the per-agent cache. */
export const DEFAULT_MAX_CACHED_RECORDS = 100_000;

export class CredentialRecords {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #cache: LruMap<string, AgentRecord>;
  /** Records read from Redis (cache misses) since start. */
  redisReads = 0;

  /** `key`: the Redis hash; `maxCached`: agents kept in memory (default 100,000). */
  constructor(redis: Redis, key: string, maxCached = DEFAULT_MAX_CACHED_RECORDS) {
    this.#redis = redis;
    this.#key = key;
    this.#cache = new LruMap(maxCached);
  }

  /** Agents cached right now. */
  get cached(): number {
    return this.#cache.size;
  }

  /** `uid`'s record ({} when nothing was issued to it). */
  async get(uid: string): Promise<AgentRecord> {
    let record = this.#cache.get(uid);
    if (!record) {
      this.redisReads++;
      const raw = await this.#redis.hget(this.#key, uid);
      record = raw ? (JSON.parse(raw) as AgentRecord) : {};
      this.#cache.set(uid, record);
    }
    return record;
  }

  async save(uid: string, record: AgentRecord): Promise<void> {
    await this.#redis.hset(this.#key, uid, JSON.stringify(record));
    this.#cache.set(uid, record);
  }
}

/** What the admin API shows of a record: serials, validity and groups; no secret. */
export interface IssuedView {
  certificate?: { serial: string; notAfter: string; group: string };
  token?: { id: string; notAfter: string; group: string };
}

export function issuedView(r: AgentRecord): IssuedView {
  const at = (ms: number) => new Date(ms).toISOString();
  return {
    ...(r.cert
      ? {
          certificate: {
            serial: r.cert.serial,
            notAfter: at(r.cert.notAfter),
            group: r.cert.group,
          },
        }
      : {}),
    ...(r.token
      ? { token: { id: r.token.id, notAfter: at(r.token.notAfter), group: r.token.group } }
      : {}),
  };
}
