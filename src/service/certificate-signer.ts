/**
 * Turns an agent's CSR into a client certificate, signing as rarely as it can:
 * - a CSR already checked for this agent (same bytes) is not checked again: the result of a
 *   check, accepted or refused, is kept by the CSR's SHA-256 (at most `maxCachedCsrs`, least
 *   recently used evicted first), since an agent may repeat its request in every message;
 * - a CSR for the key, identity and group of the agent's current certificate, while that
 *   certificate is before its rotation point, is answered with that certificate (no signing);
 * - at most one signing per agent per `csrIntervalMs` (the last signing time is in the
 *   agent's record in Redis, so every replica counts it): a client sending fresh keys gets
 *   CSR_RATE_LIMITED, and keeps the certificate it already has.
 *
 * Concurrency: one agent's messages are handled one at a time (MessageHandler).
 */
import { createHash, X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import { type AgentCa, CsrError, checkCsr } from "../ca/lazy.js";
import { LruMap } from "../lru-map.js";
import type { AgentRecord, CertRecord, CredentialRecords } from "./credential-records.js";

export interface CertificateSignerOptions {
  /** The agent CA (loaded at start; undefined: nothing is signed). */
  ca: () => AgentCa | undefined;
  records: CredentialRecords;
  logger: Logger;
  /** Lifetime of issued certificates, ms. */
  certificateValidityMs: number;
  /** Largest CSR accepted, bytes. */
  maxCsrBytes: number;
  /** Least time between two signings for one agent's CSRs, ms; 0 turns the limit off. */
  csrIntervalMs: number;
  /** True once a credential is past its rotation point. */
  due: (c: { notBefore: number; notAfter: number }) => boolean;
  now: () => number;
  /** CSR check results kept. Default 4096. */
  maxCachedCsrs?: number;
}

/** Counters since start (tests and metrics read them). */
export interface SignerStats {
  /** CSRs parsed and verified. */
  csrChecks: number;
  /** CSRs answered from an earlier check of the same bytes. */
  csrCacheHits: number;
  /** Certificates signed (for CSRs and rotations). */
  signed: number;
  /** CSRs answered with the agent's current certificate. */
  reused: number;
  /** CSRs refused by the per-agent rate limit. */
  rateLimited: number;
}

export class CertificateSigner {
  readonly stats: SignerStats = {
    csrChecks: 0,
    csrCacheHits: 0,
    signed: 0,
    reused: 0,
    rateLimited: 0,
  };
  readonly #options: CertificateSignerOptions;
  readonly #checked: LruMap<string, { spki: string } | CsrError>;

  constructor(options: CertificateSignerOptions) {
    this.#options = options;
    this.#checked = new LruMap(options.maxCachedCsrs ?? 4096);
  }

  /**
   * The certificate to offer `uid` in `group` for `csr`: its current one when the CSR asks for
   * nothing new, else a new one. Throws CsrError when the CSR is refused (a cached refusal is
   * thrown again with `data.cached: true`, so that callers log it once).
   */
  async forCsr(
    uid: string,
    group: string,
    csr: Uint8Array,
    record: AgentRecord,
  ): Promise<CertRecord> {
    const spki = await this.#check(uid, csr);
    const { now } = this.#options;
    const current = record.cert;
    if (
      current &&
      current.spki === spki &&
      current.group === group &&
      current.notAfter > now() &&
      !this.#options.due(current)
    ) {
      this.stats.reused++;
      return current;
    }
    const interval = this.#options.csrIntervalMs;
    const since = current?.issuedAt === undefined ? Infinity : now() - current.issuedAt;
    if (interval > 0 && since < interval) {
      this.stats.rateLimited++;
      throw new CsrError(
        "CSR_RATE_LIMITED",
        `agent ${uid} was issued a certificate ${Math.round(since / 1000)} s ago; at most one is signed per agent every ${Math.round(interval / 1000)} s (--agent-csr-interval): its current certificate is offered instead`,
        { intervalMs: interval },
      );
    }
    return this.sign(uid, group, spki, record);
  }

  /** Signs a certificate for `spki` (base64 SubjectPublicKeyInfo) and stores it in the record. */
  async sign(uid: string, group: string, spki: string, record: AgentRecord): Promise<CertRecord> {
    const ca = this.#options.ca() as AgentCa;
    const now = this.#options.now();
    const issued = await ca.issue({
      uid,
      group,
      spki: Buffer.from(spki, "base64"),
      validityMs: this.#options.certificateValidityMs,
      now,
    });
    this.stats.signed++;
    const fingerprint = new X509Certificate(issued.pem).fingerprint256
      .replace(/:/g, "")
      .toLowerCase();
    const cert: CertRecord = { ...issued, fingerprint, issuedAt: now, group, spki };
    await this.#options.records.save(uid, { ...record, cert });
    this.#options.logger.info(
      { instanceUid: uid, group, serial: cert.serial, notAfter: new Date(cert.notAfter) },
      "agent certificate issued",
    );
    return cert;
  }

  /** The CSR's key (base64 SPKI) once checked for `uid`; throws its CsrError. */
  async #check(uid: string, csr: Uint8Array): Promise<string> {
    const key = createHash("sha256").update(uid).update("\0").update(csr).digest("hex");
    const known = this.#checked.get(key);
    if (known !== undefined) {
      this.stats.csrCacheHits++;
      if (known instanceof CsrError)
        throw new CsrError(known.code, known.message, { ...known.data, cached: true });
      return known.spki;
    }
    this.stats.csrChecks++;
    try {
      const { spki } = await checkCsr(csr, uid, this.#options.maxCsrBytes);
      const b64 = Buffer.from(spki).toString("base64");
      this.#checked.set(key, { spki: b64 });
      return b64;
    } catch (err) {
      if (err instanceof CsrError) this.#checked.set(key, err);
      throw err;
    }
  }
}
