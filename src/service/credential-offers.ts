/**
 * Which credential an agent is offered with a message: the certificate for its CSR, its
 * current certificate (a new one past `rotateAt` of its lifetime), or a per-agent token (a new
 * one past `rotateAt`, or for a new group at most once per `csrIntervalMs`). A revoked agent
 * is offered nothing.
 *
 * Concurrency: one agent's messages are handled one at a time (MessageHandler), so its record
 * is read and written without a lock.
 */
import type { Logger } from "pino";
import { type AgentCa, CsrError } from "../ca/lazy.js";
import {
  AgentCapabilities,
  type AgentState,
  hasFlag,
  type OfferedCredential,
} from "../opamp/index.js";
import type { CertificateSigner } from "./certificate-signer.js";
import type { CertRecord, CredentialRecords } from "./credential-records.js";
import type { TokenMinter } from "./token-minter.js";

export interface CredentialOffersOptions {
  /** The agent CA now (loaded asynchronously at start); undefined: CSRs are not answered. */
  ca: () => AgentCa | undefined;
  records: CredentialRecords;
  signer: CertificateSigner;
  minter: TokenMinter;
  logger: Logger;
  /** The group an agent's current credentials allow it. */
  groupOf: (agent: Readonly<AgentState>) => string | undefined;
  /** Offer per-agent tokens to agents that accept OpAMP connection settings. */
  mintTokens: boolean;
  /** Fraction of a credential's lifetime after which a new one is offered (0 < f < 1). */
  rotateAt: number;
  /** Least time between two tokens minted for one agent because its group changed, ms. */
  csrIntervalMs: number;
  /** Whether `uid` is revoked. */
  revoked: (uid: string) => boolean;
  now: () => number;
}

export class CredentialOffers {
  readonly #o: CredentialOffersOptions;

  constructor(options: CredentialOffersOptions) {
    this.#o = options;
  }

  /** The credential to offer `agent` (with the CSR it sent, if any); undefined: none. */
  async credentialFor(
    agent: Readonly<AgentState>,
    csr: Uint8Array | undefined,
  ): Promise<OfferedCredential | undefined> {
    const o = this.#o;
    const ca = o.ca();
    if (!ca && !o.mintTokens) return undefined;
    const uid = agent.instanceUid;
    if (o.revoked(uid)) return undefined;
    const record = await o.records.get(uid);
    const group = o.groupOf(agent);
    if (csr && ca) {
      if (group === undefined) {
        o.logger.warn(
          { instanceUid: uid },
          "CSR refused: the agent has no group its credentials allow",
        );
      } else {
        try {
          return certificateOffer(await o.signer.forCsr(uid, group, csr, record), ca);
        } catch (err) {
          if (!(err instanceof CsrError)) throw err;
          // A refusal answered from the CSR cache was logged when it was first checked.
          const level = err.data.cached ? "debug" : "warn";
          o.logger[level]({ instanceUid: uid, code: err.code, err }, "CSR refused");
        }
      }
    }
    if (record.cert && ca) {
      const cert = record.cert;
      if (this.due(cert) && group === cert.group)
        return certificateOffer(await o.signer.sign(uid, group, cert.spki, record), ca);
      return certificateOffer(cert, ca);
    }
    if (!o.mintTokens || group === undefined) return undefined;
    if (!hasFlag(agent.capabilities, AgentCapabilities.AcceptsOpAMPConnectionSettings))
      return undefined;
    const token = record.token;
    if (!token || this.due(token)) return o.minter.mint(uid, group, record);
    // A new group asks for a new token, but at most one per --agent-csr-interval: an agent
    // flipping its description between groups must not mint one per message.
    if (token.group !== group && o.now() - token.notBefore >= o.csrIntervalMs)
      return o.minter.mint(uid, group, record);
    return o.minter.offer(uid, token);
  }

  /** A new token for `agent` now (it asked for one); undefined when revoked or groupless. */
  async renew(agent: Readonly<AgentState>): Promise<OfferedCredential | undefined> {
    const group = this.#o.groupOf(agent);
    if (group === undefined || this.#o.revoked(agent.instanceUid)) return undefined;
    const record = await this.#o.records.get(agent.instanceUid);
    return this.#o.minter.mint(agent.instanceUid, group, record);
  }

  /** Past `rotateAt` of its lifetime. */
  due(c: { notBefore: number; notAfter: number }): boolean {
    return this.#o.now() >= c.notBefore + (c.notAfter - c.notBefore) * this.#o.rotateAt;
  }
}

/** The offer of a certificate, with the CA's certificate beside it. */
function certificateOffer(cert: CertRecord, ca: AgentCa): OfferedCredential {
  return {
    id: cert.serial,
    certificate: { cert: Buffer.from(cert.pem), caCert: Buffer.from(ca.certPem) },
  };
}
