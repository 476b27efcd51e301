/**
 * Whether a client certificate accepted earlier still chains to the client CA after the CA
 * file was replaced (rotation): TLS checks a chain only at the handshake, so the server asks
 * this of its open connections and ends the others (server.ts `setClientCa`).
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate } from "node:tls";

/**
 * The CA certificates of one client CA file (a PEM bundle; unreadable blocks skipped), and
 * the verdicts it reached on issuer certificates, so that the thousands of connections whose
 * chains share an issuer parse and verify it once (~200 µs each otherwise). One instance per
 * rotation; not shared across threads.
 */
export class CaBundle {
  readonly #cas: X509Certificate[] = [];
  readonly #fingerprints = new Set<string>();
  /** Issuer certificate fingerprint → whether it is signed by one of the CAs. */
  readonly #issuers = new Map<string, boolean>();

  constructor(pem: string | Buffer) {
    const text = typeof pem === "string" ? pem : pem.toString("utf8");
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    for (const block of blocks ?? []) {
      try {
        const ca = new X509Certificate(block);
        this.#cas.push(ca);
        this.#fingerprints.add(ca.fingerprint256);
      } catch {
        // Not a certificate TLS could have used either.
      }
    }
  }

  /** How many CA certificates the bundle holds. */
  get size(): number {
    return this.#cas.length;
  }

  /**
   * True when some certificate of `peer`'s chain as the TLS layer reports it (the leaf, then
   * each issuer up to the trust anchor it verified) is one of the CAs or is signed by one of
   * them. Validity dates and extensions were checked at the handshake, not again here.
   */
  chains(peer: DetailedPeerCertificate): boolean {
    const certs: DetailedPeerCertificate[] = [];
    for (let cert: DetailedPeerCertificate | undefined = peer; cert?.raw; ) {
      if (certs.includes(cert)) break; // the anchor names itself as its issuer
      certs.push(cert);
      cert = cert.issuerCertificate;
    }
    // A CA of the bundle in the chain (the usual case: an overlap of old and new) costs no
    // parsing; only otherwise are signatures checked.
    if (certs.some((c) => this.#fingerprints.has(c.fingerprint256))) return true;
    return certs.some((cert, i) => {
      if (i === 0) return this.#signedByOne(new X509Certificate(cert.raw));
      let signed = this.#issuers.get(cert.fingerprint256);
      if (signed === undefined) {
        signed = this.#signedByOne(new X509Certificate(cert.raw));
        this.#issuers.set(cert.fingerprint256, signed);
      }
      return signed;
    });
  }

  #signedByOne(cert: X509Certificate): boolean {
    return this.#cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  }
}
