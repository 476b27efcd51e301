/**
 * The seams through which the service issues, rotates and revokes agent credentials; src/opamp
 * only carries what they answer. The issuer decides what an agent is offered (a certificate
 * signed for its CSR, a rotated one, a per-agent bearer token); the gate decides which
 * presented credentials are refused although the TLS layer or the tokens file accepts them.
 */
import type { PeerCertificate } from "node:tls";
import type { AgentState } from "./agent-state.js";
import type { AgentToServer } from "./messages.js";

/** The credential part of an OpAMP connection-settings offer. */
export interface OfferedCredential {
  /** Stable id (certificate serial, token id): part of the offer's hash, so each is offered once. */
  id: string;
  /** PEM client certificate and the CA that signed it (`TLSCertificate.cert`, `.ca_cert`). */
  certificate?: { cert: Uint8Array; caCert: Uint8Array };
  /** Headers the agent must send, e.g. `Authorization: Bearer <token>`. */
  headers?: { key: string; value: string }[];
}

export interface CredentialIssuer {
  /**
   * The agent's current credential to offer, or undefined for none. `csr` is the PEM CSR the
   * message carries (ConnectionSettingsRequest.opamp.certificate_request.csr), if any.
   * Called for every message that is not a goodbye, after the report is merged: it must answer
   * from memory when nothing is due. A credential without certificate or headers has a
   * payload that cannot be re-sent (a token known only as its digest); `renew` replaces it when
   * an offer must be sent anyway. Rejections are logged and the message is answered without.
   */
  credentialFor(
    agent: Readonly<AgentState>,
    csr: Uint8Array | undefined,
  ): Promise<OfferedCredential | undefined>;
  /** A fresh credential of the same kind (a new token), for an offer that must carry one. */
  renew(agent: Readonly<AgentState>): Promise<OfferedCredential | undefined>;
  /**
   * True when `credential` (a connection's digest, identity.ts) holds a credential issued to
   * `uid`: the agent switching to what it was given may take its uid over at once, although
   * its previous session (an HTTP agent's, until liveness runs out) still looks connected.
   */
  issuedTo?(credential: string, uid: string): Promise<boolean>;
}

export interface CredentialGate {
  /** True when a client certificate the CA verified is refused (revoked). Synchronous. */
  refuseCertificate(cert: PeerCertificate): boolean;
  /**
   * A bearer token not in the tokens file: `{ scope }` for a valid per-agent token, `null` for
   * a known but revoked or expired one (refused even on an open endpoint), undefined when unknown.
   */
  mintedToken(token: string): { scope?: string } | null | undefined;
  /**
   * The instance uid a verified client certificate is bound to (one the agent CA issued names
   * it), or undefined when it binds none. `names` as CertificateScope gets them. A connection
   * presenting a bound certificate may speak only for that uid: messages for another are
   * refused (MessageHandler).
   */
  boundUid?(names: readonly string[], cert: PeerCertificate): string | undefined;
}

/** The PEM CSR of a ConnectionSettingsRequest, or undefined. */
export function csrOf(message: AgentToServer): Uint8Array | undefined {
  const request = message.connectionSettingsRequest as
    | { opamp?: { certificateRequest?: { csr?: Uint8Array } | null } | null }
    | null
    | undefined;
  const csr = request?.opamp?.certificateRequest?.csr;
  return csr && csr.length > 0 ? csr : undefined;
}
