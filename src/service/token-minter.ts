/**
 * Per-agent bearer tokens (`--mint-agent-tokens`): a random 32-byte token per agent, scoped to
 * its group, stored only as its SHA-256 digest (Redis `<p>:agent-tokens`, digest → uid, group,
 * expiry; and in the agent's record). The plaintext stays in this process' memory (at most
 * `maxPlain` agents, least recently used evicted first), so that a later offer can carry it
 * again; elsewhere (another replica, after a restart, after eviction) an offer that must carry
 * one gets a new token.
 *
 * Concurrency: one agent's messages are handled one at a time (MessageHandler).
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { LruMap } from "../lru-map.js";
import type { OfferedCredential } from "../opamp/index.js";
import type { AgentRecord, CredentialRecords, TokenRecord } from "./credential-records.js";

/** What the agent port's index holds per token digest. */
export interface TokenEntry {
  uid: string;
  group: string;
  notAfter: number;
}

export const digestOf = (token: string) => createHash("sha256").update(token).digest("hex");

export interface TokenMinterOptions {
  redis: Redis;
  /** The Redis hash of the token index. */
  indexKey: string;
  records: CredentialRecords;
  logger: Logger;
  /** Lifetime of minted tokens, ms. */
  tokenValidityMs: number;
  now: () => number;
  /** Called after a token joined the index (bump the version, index it in memory). */
  onMinted: (digest: string, entry: TokenEntry) => Promise<void>;
  /** Agents whose plaintext token is kept. Default 100,000. */
  maxPlain?: number;
}

export class TokenMinter {
  readonly #options: TokenMinterOptions;
  readonly #plain: LruMap<string, { id: string; token: string }>;

  constructor(options: TokenMinterOptions) {
    this.#options = options;
    this.#plain = new LruMap(options.maxPlain ?? 100_000);
  }

  /** Mints a new token for `uid` in `group` and records it; the offer carries the plaintext. */
  async mint(uid: string, group: string, record: AgentRecord): Promise<OfferedCredential> {
    const o = this.#options;
    const plain = randomBytes(32).toString("base64url");
    const now = o.now();
    const token: TokenRecord = {
      id: randomBytes(8).toString("hex"),
      digest: digestOf(plain),
      group,
      notBefore: now,
      notAfter: now + o.tokenValidityMs,
    };
    const entry = { uid, group, notAfter: token.notAfter };
    // The previous token stays valid until it expires: the agent switches when it applies the
    // offer, and a lost offer must not lock it out.
    await o.redis.hset(o.indexKey, token.digest, JSON.stringify(entry));
    await o.records.save(uid, { ...record, token });
    await o.onMinted(token.digest, entry);
    this.#plain.set(uid, { id: token.id, token: plain });
    o.logger.info({ instanceUid: uid, group, tokenId: token.id }, "agent token minted");
    return { id: token.id, headers: [{ key: "Authorization", value: `Bearer ${plain}` }] };
  }

  /** The offer of `token` (`uid`'s current one): with its plaintext when this process has it. */
  offer(uid: string, token: TokenRecord): OfferedCredential {
    const plain = this.#plain.get(uid);
    return plain?.id === token.id
      ? { id: token.id, headers: [{ key: "Authorization", value: `Bearer ${plain.token}` }] }
      : { id: token.id };
  }

  /** Drops `uid`'s plaintext (revoked). */
  forget(uid: string): void {
    this.#plain.delete(uid);
  }
}
