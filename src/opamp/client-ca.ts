/**
 * Whether a client certificate accepted earlier still chains to the client CA after the CA
 * file was replaced (rotation): TLS checks a chain only at the handshake, so the server asks
 * this of its open connections and ends the others (server.ts `setClientCa`).
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate } from "node:tls";

/** The certificates of a PEM bundle (one or more CA certificates); unreadable ones skipped. */
export function caBundle(pem: string | Buffer): X509Certificate[] {
  const text = typeof pem === "string" ? pem : pem.toString("utf8");
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  const out: X509Certificate[] = [];
  for (const block of blocks ?? []) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // Not a certificate TLS could have used either.
    }
  }
  return out;
}

/**
 * True when some certificate of `peer`'s chain as presented (the leaf, then each issuer the
 * client sent) is one of `cas` or is signed by one of them. Validity dates and extensions
 * were checked at the handshake and are not checked again here.
 */
export function chainsTo(peer: DetailedPeerCertificate, cas: readonly X509Certificate[]): boolean {
  const seen = new Set<DetailedPeerCertificate>();
  for (let cert: DetailedPeerCertificate | undefined = peer; cert?.raw && !seen.has(cert); ) {
    seen.add(cert);
    const x509 = new X509Certificate(cert.raw);
    for (const ca of cas) {
      if (ca.fingerprint256 === x509.fingerprint256) return true;
      if (x509.checkIssued(ca) && x509.verify(ca.publicKey)) return true;
    }
    cert = cert.issuerCertificate;
  }
  return false;
}
