/**
 * Recognises client certificates the agent CA issued, and reads what their names mean
 * (names.ts in src/ca): the group scope (`groups=<group>`) and the instance uid they are bound
 * to. Any other certificate's names mean nothing here (undefined). Whether the CA signed a
 * certificate is checked once per fingerprint (an LRU of 10,000), as every TLS request asks.
 */
import type { PeerCertificate } from "node:tls";
import { type AgentCa, issuedNames } from "../ca/lazy.js";
import { LruMap } from "../lru-map.js";
import { groupScope } from "./group-scope.js";

export class IssuedCertificates {
  readonly #ca: () => AgentCa | undefined;
  readonly #signed = new LruMap<string, boolean>(10_000);

  /** `ca`: the agent CA now (loaded asynchronously at start); undefined: none issued. */
  constructor(ca: () => AgentCa | undefined) {
    this.#ca = ca;
  }

  /** True when `cert` was signed by the agent CA (its names then mean what names.ts says). */
  issuedByCa(cert: PeerCertificate): boolean {
    const key = cert.fingerprint256;
    let known = this.#signed.get(key);
    if (known === undefined) {
      known = this.#ca()?.signed(cert.raw) ?? false;
      this.#signed.set(key, known);
    }
    return known;
  }

  /** The scope of a certificate this CA issued (`groups=<group>`); undefined for others. */
  scope(names: readonly string[], cert: PeerCertificate | undefined): string | undefined {
    if (!cert?.raw || !this.#ca()) return undefined;
    const { uid, groups } = issuedNames(names);
    if (uid === undefined || groups.length === 0 || !this.issuedByCa(cert)) return undefined;
    return groupScope(groups);
  }

  /** The instance uid a certificate this CA issued is bound to; undefined for others. */
  boundUid(names: readonly string[], cert: PeerCertificate): string | undefined {
    if (!cert.raw || !this.#ca()) return undefined;
    const { uid } = issuedNames(names);
    return uid !== undefined && this.issuedByCa(cert) ? uid : undefined;
  }
}
