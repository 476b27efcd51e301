/**
 * The service's credential authority for agents: signs the CSRs agents send (with the agent
 * CA from src/ca), rotates certificates and per-agent tokens before they expire, and keeps the
 * deny list (revocations from the admin API and from Git's fleet.yaml `revoked:` list).
 *
 * What lives where:
 * - Redis `<p>:agent-credentials` (uid → JSON): per agent, what was issued last, cached in a
 *   bounded LRU (credential-records.ts). CSRs are checked and signed by certificate-signer.ts
 *   (each CSR checked once, a repeated one answered with the same certificate, a per-agent
 *   signing rate limit).
 * - Redis `<p>:agent-tokens` (digest → uid, group, expiry): the per-agent tokens the agent
 *   port accepts beside its tokens file.
 * - Redis `<p>:revoked` (uid → when, by whom) and `<p>:revoked-serials`: API revocations,
 *   held in memory with Git's list by a DenyList (deny-list.ts).
 * - `<p>:credentials-version`, bumped on every change: replicas re-read the two indexes
 *   when it moves (checked every `pollMs`, the fallback for a lost message).
 * - Channel `<p>:revocations`: an API revocation is published there (the uid) and every
 *   replica (following it, src/redis-subscriber.ts) re-reads the indexes at once, so the
 *   agent's connections everywhere are closed and its credentials refused without a poll.
 * - A minted token's plaintext only in this process' memory (token-minter.ts), to re-send it
 *   in a later offer; after a restart such an offer carries a new token instead. The CA key never leaves memory.
 *
 * Concurrency: one agent's messages are handled one at a time (MessageHandler), so the
 * per-agent record is read and written without a lock. Gate checks are synchronous, from memory.
 */
import type { PeerCertificate } from "node:tls";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { type AgentCa, CsrError, issuedNames } from "../ca/index.js";
import { LruMap } from "../lru-map.js";
import {
  AgentCapabilities,
  type AgentState,
  type CredentialGate,
  type CredentialIssuer,
  hasFlag,
  type OfferedCredential,
} from "../opamp/index.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import { CertificateSigner, type SignerStats } from "./certificate-signer.js";
import {
  type AgentRecord,
  type CertRecord,
  CredentialRecords,
  type IssuedView,
  issuedView,
} from "./credential-records.js";
import { DenyList, type Revocation } from "./deny-list.js";
import { groupScope } from "./group-scope.js";
import { digestOf, TokenMinter } from "./token-minter.js";

export interface AgentCredentialOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** The agent CA; undefined: CSRs are not answered. */
  ca?: AgentCa | undefined;
  /** The group an agent's current credentials allow it (FleetProvider.groupOf). */
  groupOf: (agent: Readonly<AgentState>) => string | undefined;
  /** Lifetime of issued certificates, ms. */
  certificateValidityMs: number;
  /** Offer per-agent bearer tokens to agents that accept OpAMP connection settings. */
  mintTokens: boolean;
  /** Lifetime of minted tokens, ms. */
  tokenValidityMs: number;
  /** Fraction of a credential's lifetime after which a new one is offered (0 < f < 1). */
  rotateAt: number;
  /** Largest CSR accepted, bytes. */
  maxCsrBytes: number;
  /** Least time between two certificates signed for one agent's CSRs, ms; 0: no limit. */
  csrIntervalMs?: number;
  /** Agents whose records are cached in memory (LRU). Default 100,000. */
  maxCachedRecords?: number;
  /** How often other replicas' changes are looked for, ms. Default 2000. */
  pollMs?: number;
  /** The process' shared pub/sub connection. Default: one of its own. */
  subscriber?: RedisSubscriber;
  /** Called with the uids whose credentials were just revoked (close their connections). */
  onRevoked?: (uids: readonly string[]) => void;
  now?: () => number;
}

export type { Revocation } from "./deny-list.js";

export class AgentCredentialAuthority implements CredentialIssuer, CredentialGate {
  readonly #options: AgentCredentialOptions;
  readonly #now: () => number;
  readonly #records: CredentialRecords;
  readonly #signer: CertificateSigner;
  readonly #minter: TokenMinter;
  readonly #signed = new LruMap<string, boolean>(10_000);
  #tokens = new Map<string, { uid: string; group: string; notAfter: number }>();
  readonly #denied = new DenyList();
  #version: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #unfollow: (() => void) | undefined;
  /** close() was called (and start() not called again since). */
  #closed = false;

  constructor(options: AgentCredentialOptions) {
    this.#options = { ...options };
    this.#now = options.now ?? Date.now;
    this.#records = new CredentialRecords(
      options.redis,
      this.#key("agent-credentials"),
      options.maxCachedRecords,
    );
    this.#signer = new CertificateSigner({
      ca: () => this.#options.ca,
      records: this.#records,
      logger: options.logger,
      certificateValidityMs: options.certificateValidityMs,
      maxCsrBytes: options.maxCsrBytes,
      csrIntervalMs: options.csrIntervalMs ?? 0,
      due: (c) => this.#due(c),
      now: this.#now,
    });
    this.#minter = new TokenMinter({
      redis: options.redis,
      indexKey: this.#key("agent-tokens"),
      records: this.#records,
      logger: options.logger,
      tokenValidityMs: options.tokenValidityMs,
      now: this.#now,
      onMinted: async (digest, entry) => {
        await this.#bump();
        this.#tokens.set(digest, entry);
      },
    });
  }

  /** Counters of CSR checks and signings, and of the per-agent record cache. */
  get stats(): SignerStats & { recordReads: number; recordsCached: number } {
    return {
      ...this.#signer.stats,
      recordReads: this.#records.redisReads,
      recordsCached: this.#records.cached,
    };
  }

  /** Sets the CA (loaded asynchronously at start). */
  useCa(ca: AgentCa): void {
    this.#options.ca = ca;
  }

  /** True when `cert` was signed by the agent CA (its names then mean what names.ts says). */
  issuedByCa(cert: PeerCertificate): boolean {
    const key = cert.fingerprint256;
    let known = this.#signed.get(key);
    if (known === undefined) {
      known = this.#options.ca?.signed(cert.raw) ?? false;
      this.#signed.set(key, known);
    }
    return known;
  }

  /** The scope of a certificate this CA issued (`groups=<group>`); undefined for others. */
  certificateScope(names: readonly string[], cert: PeerCertificate | undefined) {
    if (!cert?.raw || !this.#options.ca) return undefined;
    const { uid, groups } = issuedNames(names);
    if (uid === undefined || groups.length === 0 || !this.issuedByCa(cert)) return undefined;
    return groupScope(groups);
  }

  /**
   * The instance uid a certificate this CA issued is bound to (its agent URI, names.ts);
   * undefined for any other certificate, whose names mean nothing to this CA.
   */
  boundUid(names: readonly string[], cert: PeerCertificate): string | undefined {
    if (!cert.raw || !this.#options.ca) return undefined;
    const { uid } = issuedNames(names);
    return uid !== undefined && this.issuedByCa(cert) ? uid : undefined;
  }

  #key(name: string): string {
    return `${this.#options.prefix}:${name}`;
  }

  /** Loads the indexes and starts watching for other replicas' changes. Idempotent. */
  async start(): Promise<void> {
    this.#closed = false;
    if (!this.#unfollow) await this.#subscribe();
    // Closed while subscribing: close() found nothing to unfollow.
    if (this.#closed) return this.close();
    await this.#reload();
    // Closed meanwhile: no poll timer after close().
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      void this.#reload().catch((err) =>
        this.#options.logger.warn({ err }, "cannot read agent credential changes; will retry"),
      );
    }, this.#options.pollMs ?? 2000);
    this.#timer.unref();
  }

  async #subscribe(): Promise<void> {
    const { logger } = this.#options;
    // A message (the uid) only says "look": the indexes in Redis are the truth, re-read whole.
    const look = () =>
      this.#reload().catch((err) =>
        logger.warn({ err }, "cannot read a published revocation; the poll will retry"),
      );
    this.#unfollow = await follow<string>(this.#options, this.#key("revocations"), {
      onMessage: look,
      onResubscribed: look,
      decode: (uid) => uid,
      maxMessageBytes: 1024,
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  async #reload(): Promise<void> {
    const { redis } = this.#options;
    const version = await redis.get(this.#key("credentials-version"));
    if (version === this.#version && this.#version !== null) return;
    const [tokens, revoked, serials] = await Promise.all([
      redis.hgetall(this.#key("agent-tokens")),
      redis.hgetall(this.#key("revoked")),
      redis.smembers(this.#key("revoked-serials")),
    ]);
    this.#tokens = new Map(Object.entries(tokens).map(([d, v]) => [d, JSON.parse(v)]));
    const added = this.#denied.loadApi(revoked, serials);
    this.#version = version ?? "0";
    for (const uid of added) this.#forget(uid);
    if (added.length > 0) this.#options.onRevoked?.(added);
  }

  async #bump(): Promise<void> {
    this.#version = String(await this.#options.redis.incr(this.#key("credentials-version")));
  }

  /** The revocation of `uid`, from the API or Git; undefined when it is not revoked. */
  revocation(uid: string): Revocation | undefined {
    return this.#denied.get(uid);
  }

  /** Every revoked uid with its record. */
  revocations(): Map<string, Revocation> {
    return this.#denied.all();
  }

  /**
   * Revokes `uid`'s credentials for good (admin API): its certificates' serials join the deny
   * set, its tokens stop working, its live connections are closed. Idempotent: the first
   * revocation's record is kept.
   */
  async revoke(uid: string, by: string): Promise<Revocation> {
    const existing = this.#denied.fromApi(uid);
    if (existing) return existing;
    const record: Revocation = { at: new Date(this.#now()).toISOString(), by };
    const agent = await this.#record(uid);
    const { redis } = this.#options;
    const multi = redis.multi().hsetnx(this.#key("revoked"), uid, JSON.stringify(record));
    if (agent.cert) multi.sadd(this.#key("revoked-serials"), agent.cert.serial);
    // Its tokens stay in the index, so that every replica answers them "revoked" (refused even
    // on an open endpoint) rather than "unknown".
    await multi.exec();
    await this.#bump();
    this.#denied.addApi(uid, record, agent.cert?.serial);
    this.#forget(uid);
    this.#options.logger.info({ instanceUid: uid, by }, "agent credentials revoked");
    this.#options.onRevoked?.([uid]);
    // Every replica re-reads at once (this one too, finding nothing new).
    await redis.publish(this.#key("revocations"), uid);
    return record;
  }

  /**
   * The deny list of the current Git commit (fleet.yaml `revoked:`). It replaces the previous
   * one: a uid removed from the list may connect again (API revocations stay).
   */
  setGitRevoked(uids: readonly string[], commit: string): void {
    const added = this.#denied.setGit(uids, commit, new Date(this.#now()).toISOString());
    for (const uid of added) this.#forget(uid);
    if (added.length > 0) this.#options.onRevoked?.(added);
  }

  #forget(uid: string): void {
    this.#minter.forget(uid);
  }

  // --- CredentialGate -------------------------------------------------------------------

  refuseCertificate(cert: PeerCertificate): boolean {
    return this.#denied.refuses(cert);
  }

  mintedToken(token: string): { scope?: string } | null | undefined {
    const entry = this.#tokens.get(digestOf(token));
    if (!entry) return undefined;
    if (this.revocation(entry.uid) || entry.notAfter <= this.#now()) return null;
    return { scope: groupScope([entry.group]) };
  }

  // --- CredentialIssuer -----------------------------------------------------------------

  async credentialFor(
    agent: Readonly<AgentState>,
    csr: Uint8Array | undefined,
  ): Promise<OfferedCredential | undefined> {
    const { ca } = this.#options;
    if (!ca && !this.#options.mintTokens) return undefined;
    const uid = agent.instanceUid;
    if (this.revocation(uid)) return undefined;
    const record = await this.#record(uid);
    const group = this.#options.groupOf(agent);
    if (csr && ca) {
      if (group === undefined) {
        this.#options.logger.warn(
          { instanceUid: uid },
          "CSR refused: the agent has no group its credentials allow",
        );
      } else {
        try {
          return this.#certificate(await this.#signer.forCsr(uid, group, csr, record));
        } catch (err) {
          if (!(err instanceof CsrError)) throw err;
          // A refusal answered from the CSR cache was logged when it was first checked.
          const level = err.data.cached ? "debug" : "warn";
          this.#options.logger[level]({ instanceUid: uid, code: err.code, err }, "CSR refused");
        }
      }
    }
    if (record.cert && ca) {
      const cert = record.cert;
      if (this.#due(cert) && group === cert.group)
        return this.#certificate(await this.#signer.sign(uid, group, cert.spki, record));
      return this.#certificate(cert);
    }
    if (!this.#options.mintTokens || group === undefined) return undefined;
    if (!hasFlag(agent.capabilities, AgentCapabilities.AcceptsOpAMPConnectionSettings))
      return undefined;
    const token = record.token;
    if (!token || this.#due(token) || token.group !== group)
      return this.#minter.mint(uid, group, record);
    return this.#minter.offer(uid, token);
  }

  /** Some part of `credential` was issued to `uid`, and no part to another agent. */
  async issuedTo(credential: string, uid: string): Promise<boolean> {
    if (this.revocation(uid)) return false;
    let any = false;
    for (const part of credential.split(" ")) {
      if (part.startsWith("sha256:")) {
        // A token of the tokens file is neutral; a minted one must be this agent's.
        const entry = this.#tokens.get(part.slice(7));
        if (!entry) continue;
        if (entry.uid !== uid || entry.notAfter <= this.#now()) return false;
        any = true;
      } else if (part.startsWith("cert:")) {
        const record = await this.#record(uid);
        if (!record.cert?.fingerprint || record.cert.fingerprint !== part.slice(5)) return false;
        any = true;
      }
    }
    return any;
  }

  async renew(agent: Readonly<AgentState>): Promise<OfferedCredential | undefined> {
    const group = this.#options.groupOf(agent);
    if (group === undefined || this.revocation(agent.instanceUid)) return undefined;
    return this.#minter.mint(agent.instanceUid, group, await this.#record(agent.instanceUid));
  }

  /** Past `rotateAt` of its lifetime. */
  #due(c: { notBefore: number; notAfter: number }): boolean {
    return this.#now() >= c.notBefore + (c.notAfter - c.notBefore) * this.#options.rotateAt;
  }

  #certificate(cert: CertRecord): OfferedCredential {
    return {
      id: cert.serial,
      certificate: {
        cert: Buffer.from(cert.pem),
        caCert: Buffer.from((this.#options.ca as AgentCa).certPem),
      },
    };
  }

  #record(uid: string): Promise<AgentRecord> {
    return this.#records.get(uid);
  }

  /** What was issued to `uid` (for the admin API): serial, validity and group; no secret. */
  async issued(uid: string): Promise<IssuedView> {
    return issuedView(await this.#record(uid));
  }
}
