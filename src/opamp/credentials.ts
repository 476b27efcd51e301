/**
 * The credentials agents may present, replaceable while the server runs (rotation without a
 * restart): bearer tokens, each with an optional scope, and client certificates, whose scope
 * a callback derives from the certificate's names.
 *
 * A scope is opaque here: src/opamp never reads it. It travels with the session (the
 * Connection, then AgentState.scopes) to the desired-state provider, which decides what it
 * allows (the service reads group names from it, see src/service/group-scope.ts).
 */

import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { tokenDigest } from "./auth.js";
import type { CredentialGate } from "./credential-hooks.js";

/** One accepted bearer token; `scope` (when set) is carried with every session using it. */
export interface AgentToken {
  token: string;
  scope?: string;
}

/**
 * The scope of a client certificate, from its names: the subject CN first, then each
 * subjectAltName value (DNS names, URIs, IP addresses, e-mail addresses), without their
 * `DNS:`/`URI:` prefixes. Undefined: the certificate carries no scope. `cert` is the verified
 * certificate itself, for scopes that depend on who issued it.
 */
export type CertificateScope = (
  names: readonly string[],
  cert?: PeerCertificate,
) => string | undefined;

/**
 * The lines of an agent tokens file: `<token>` or `<token> <scope>` (the scope is the rest of
 * the line, trimmed); blank lines and `#` comments are skipped. Tokens never hold whitespace.
 */
export function parseAgentTokens(text: string): AgentToken[] {
  const out: AgentToken[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line) as RegExpExecArray;
    const scope = m[2]?.trim();
    out.push(scope ? { token: m[1] as string, scope } : { token: m[1] as string });
  }
  return out;
}

/** Names of a client certificate (CN, then subjectAltName values). */
export function namesOf(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === "string" && cn !== "") names.push(cn);
  for (const part of (cert.subjectaltname ?? "").split(/,\s*/)) {
    const value = part.replace(/^[A-Za-z ]+:/, "");
    if (value !== "") names.push(value);
  }
  return names;
}

/**
 * The client certificate `req`'s connection presented, read once: `verified` when the TLS
 * layer verified it, `unverified` when one was presented but did not verify (optional client
 * certificates), neither when there is none (or the socket is already destroyed: a revoked
 * certificate's connection, mid-request).
 */
function peerOf(req: IncomingMessage): { verified?: PeerCertificate; unverified?: true } {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function") return {};
  const cert = socket.getPeerCertificate() as PeerCertificate | null;
  if (!cert?.raw) return {};
  return socket.authorized ? { verified: cert } : { unverified: true };
}

/**
 * A configured token as loaded from the tokens file: one object per token per load, shared by
 * every session it admitted (sessions keep it to be checked again at the next rotation).
 */
export interface ConfiguredToken {
  readonly digest: Buffer;
  readonly scope: string | undefined;
}

interface Admission {
  scopes: readonly string[];
  uid?: string;
  token?: ConfiguredToken;
}

// What each admitted request carries, from the server's check to the transports.
const admitted = new WeakMap<IncomingMessage, Admission>();

/** The scopes the server admitted `req` with ([] when it carries none). */
export function scopesOf(req: IncomingMessage): readonly string[] {
  return admitted.get(req)?.scopes ?? [];
}

/**
 * `{ boundUid }` when `req` presented a client certificate bound to one instance uid (see
 * CredentialGate.boundUid), else {}: spread into the Connection.
 */
export function boundUidOf(req: IncomingMessage): { boundUid?: string } {
  const uid = admitted.get(req)?.uid;
  return uid === undefined ? {} : { boundUid: uid };
}

/** The configured token that admitted `req`; undefined for minted tokens and open endpoints. */
export function configuredTokenOf(req: IncomingMessage): ConfiguredToken | undefined {
  return admitted.get(req)?.token;
}

export class AgentCredentials {
  #tokens: ConfiguredToken[] = [];
  /** The same tokens by hex digest, for checking sessions after a rotation. */
  #byDigest = new Map<string, ConfiguredToken>();
  readonly #certificateScope: CertificateScope | undefined;
  readonly #gate: CredentialGate | undefined;

  /** `gate`: revoked certificates and per-agent (minted) tokens, see credential-hooks.ts. */
  constructor(
    tokens: readonly (string | AgentToken)[],
    certificateScope?: CertificateScope,
    gate?: CredentialGate,
  ) {
    this.#certificateScope = certificateScope;
    this.#gate = gate;
    this.setTokens(tokens);
  }

  /** True when no token is configured: every request passes the token check. */
  get open(): boolean {
    return this.#tokens.length === 0;
  }

  /**
   * Replaces the accepted tokens. Requests are checked against the new set at once; sessions
   * already admitted are not touched here (the server asks `stillAdmits` for each).
   */
  setTokens(tokens: readonly (string | AgentToken)[]): void {
    this.#tokens = tokens.map((t) => {
      const entry = typeof t === "string" ? { token: t } : t;
      return { digest: tokenDigest(entry.token), scope: entry.scope };
    });
    this.#byDigest = new Map();
    // The first of a repeated token, as admit() picks it.
    for (const t of this.#tokens) {
      const key = t.digest.toString("hex");
      if (!this.#byDigest.has(key)) this.#byDigest.set(key, t);
    }
  }

  /**
   * Whether a session admitted by `token` would be admitted now with the same scope: the token
   * is still configured and its scope did not change. (The digests compared here are of
   * tokens the server already accepted, not of a secret presented now: no timing concern.)
   */
  stillAdmits(token: ConfiguredToken): boolean {
    const now = this.#byDigest.get(token.digest.toString("hex"));
    return now !== undefined && now.scope === token.scope;
  }

  /**
   * Checks `Authorization: Bearer <token>` (constant time over SHA-256 digests, every token
   * compared) and remembers the scopes `req` carries: the token's and the certificate's.
   * A per-agent token the gate knows is accepted beside the configured ones; a revoked
   * certificate or per-agent token is refused even on an open endpoint. Returns false when
   * the request is refused.
   */
  admit(req: IncomingMessage): boolean {
    const scopes: string[] = [];
    // The peer certificate is read once: each getPeerCertificate() builds a new object.
    const { verified: cert, unverified } = peerOf(req);
    if (unverified) return false;
    const gate = this.#gate;
    if (cert && gate?.refuseCertificate(cert)) return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    const minted = m?.[1] ? gate?.mintedToken(m[1]) : undefined;
    if (minted === null) return false;
    let token: ConfiguredToken | undefined;
    if (minted) {
      if (minted.scope !== undefined) scopes.push(minted.scope);
    } else if (this.#tokens.length > 0) {
      if (!m?.[1]) return false;
      const presented = tokenDigest(m[1]);
      for (const t of this.#tokens) if (timingSafeEqual(t.digest, presented) && !token) token = t;
      if (!token) return false;
      if (token.scope !== undefined) scopes.push(token.scope);
    }
    const names = cert ? namesOf(cert) : [];
    if (this.#certificateScope) {
      const scope = this.#certificateScope(names, cert);
      if (scope !== undefined) scopes.push(scope);
    }
    const uid = cert ? gate?.boundUid?.(names, cert) : undefined;
    const admission: Admission = { scopes };
    if (uid !== undefined) admission.uid = uid;
    if (token) admission.token = token;
    admitted.set(req, admission);
    return true;
  }
}
