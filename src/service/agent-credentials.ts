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
 * - The token index and the deny list, shared by the replicas through Redis and held in
 *   memory: credential-index.ts. Which certificates the agent CA issued: issued-certificates.ts.
 * - A minted token's plaintext only in this process' memory (token-minter.ts), to re-send it
 *   in a later offer; after a restart such an offer carries a new token instead. The CA key never leaves memory.
 *
 * Concurrency: one agent's messages are handled one at a time (MessageHandler), so the
 * per-agent record is read and written without a lock. Gate checks are synchronous, from memory.
 */
import type { PeerCertificate } from "node:tls";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AgentCa } from "../ca/lazy.js";
import type {
  AgentState,
  CredentialGate,
  CredentialIssuer,
  OfferedCredential,
} from "../opamp/index.js";
import type { RedisSubscriber } from "../redis-subscriber.js";
import { CertificateSigner, type SignerStats } from "./certificate-signer.js";
import { CredentialIndex } from "./credential-index.js";
import { CredentialOffers } from "./credential-offers.js";
import {
  type AgentRecord,
  CredentialRecords,
  type IssuedView,
  issuedView,
} from "./credential-records.js";
import type { Revocation } from "./deny-list.js";
import { groupScope } from "./group-scope.js";
import { IssuedCertificates } from "./issued-certificates.js";
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
  /**
   * Least time between two certificates signed for one agent's CSRs, and between two tokens
   * minted for it because its group changed, ms; 0: no limit.
   */
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
  readonly #index: CredentialIndex;
  readonly #issuedCerts: IssuedCertificates;
  readonly #offers: CredentialOffers;

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
      due: (c) => this.#offers.due(c),
      now: this.#now,
    });
    this.#minter = new TokenMinter({
      redis: options.redis,
      indexKey: this.#key("agent-tokens"),
      records: this.#records,
      logger: options.logger,
      tokenValidityMs: options.tokenValidityMs,
      now: this.#now,
      onMinted: (digest, entry) => this.#index.addToken(digest, entry),
    });
    this.#index = new CredentialIndex({
      redis: options.redis,
      prefix: options.prefix,
      logger: options.logger,
      pollMs: options.pollMs,
      subscriber: options.subscriber,
      now: this.#now,
      onRevoked: (uids) => {
        for (const uid of uids) this.#minter.forget(uid);
        this.#options.onRevoked?.(uids);
      },
    });
    this.#issuedCerts = new IssuedCertificates(() => this.#options.ca);
    this.#offers = new CredentialOffers({
      ca: () => this.#options.ca,
      records: this.#records,
      signer: this.#signer,
      minter: this.#minter,
      logger: options.logger,
      groupOf: options.groupOf,
      mintTokens: options.mintTokens,
      rotateAt: options.rotateAt,
      csrIntervalMs: options.csrIntervalMs ?? 0,
      revoked: (uid) => this.revocation(uid) !== undefined,
      now: this.#now,
    });
  }

  #key(name: string): string {
    return `${this.#options.prefix}:${name}`;
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
    return this.#issuedCerts.issuedByCa(cert);
  }

  /** The scope of a certificate this CA issued (`groups=<group>`); undefined for others. */
  certificateScope(names: readonly string[], cert: PeerCertificate | undefined) {
    return this.#issuedCerts.scope(names, cert);
  }

  /**
   * The instance uid a certificate this CA issued is bound to (its agent URI, names.ts);
   * undefined for any other certificate, whose names mean nothing to this CA.
   */
  boundUid(names: readonly string[], cert: PeerCertificate): string | undefined {
    return this.#issuedCerts.boundUid(names, cert);
  }

  /** Loads the indexes and starts watching for other replicas' changes. Idempotent. */
  start(): Promise<void> {
    return this.#index.start();
  }

  close(): void {
    this.#index.close();
  }

  /** The revocation of `uid`, from the API or Git; undefined when it is not revoked. */
  revocation(uid: string): Revocation | undefined {
    return this.#index.revocation(uid);
  }

  /** Every revoked uid with its record. */
  revocations(): Map<string, Revocation> {
    return this.#index.revocations();
  }

  /**
   * Revokes `uid`'s credentials for good (admin API): its certificates' serials join the deny
   * set, its tokens stop working, its live connections are closed. Idempotent: the first
   * revocation's record is kept.
   */
  revoke(uid: string, by: string): Promise<Revocation> {
    return this.#index.revoke(uid, by, async () => (await this.#record(uid)).cert?.serial);
  }

  /**
   * The deny list of the current Git commit (fleet.yaml `revoked:`). It replaces the previous
   * one: a uid removed from the list may connect again (API revocations stay).
   */
  setGitRevoked(uids: readonly string[], commit: string): void {
    this.#index.setGitRevoked(uids, commit);
  }

  // --- CredentialGate -------------------------------------------------------------------

  refuseCertificate(cert: PeerCertificate): boolean {
    return this.#index.refuses(cert);
  }

  mintedToken(token: string): { scope?: string } | null | undefined {
    const entry = this.#index.token(digestOf(token));
    if (!entry) return undefined;
    if (this.revocation(entry.uid) || entry.notAfter <= this.#now()) return null;
    return { scope: groupScope([entry.group]) };
  }

  // --- CredentialIssuer -----------------------------------------------------------------

  credentialFor(
    agent: Readonly<AgentState>,
    csr: Uint8Array | undefined,
  ): Promise<OfferedCredential | undefined> {
    return this.#offers.credentialFor(agent, csr);
  }

  /** Some part of `credential` was issued to `uid`, and no part to another agent. */
  async issuedTo(credential: string, uid: string): Promise<boolean> {
    if (this.revocation(uid)) return false;
    let any = false;
    for (const part of credential.split(" ")) {
      if (part.startsWith("sha256:")) {
        // A token of the tokens file is neutral; a minted one must be this agent's.
        const entry = this.#index.token(part.slice(7));
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

  renew(agent: Readonly<AgentState>): Promise<OfferedCredential | undefined> {
    return this.#offers.renew(agent);
  }

  #record(uid: string): Promise<AgentRecord> {
    return this.#records.get(uid);
  }

  /** What was issued to `uid` (for the admin API): serial, validity and group; no secret. */
  async issued(uid: string): Promise<IssuedView> {
    return issuedView(await this.#record(uid));
  }
}
