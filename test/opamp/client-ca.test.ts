/**
 * client-ca.ts: which open connections a new client CA still admits. Real certificates made
 * with openssl (helpers/certs.ts); the chain is given as the TLS layer reports it
 * (getPeerCertificate(true): the leaf, then each issuer, the last naming itself).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import type { DetailedPeerCertificate } from "node:tls";
import { CaBundle } from "../../src/opamp/client-ca.js";
import { makeTestCerts } from "../helpers/certs.js";

/** A chain as getPeerCertificate(true) shows it; the last certificate names itself. */
function chain(...pems: Buffer[]): DetailedPeerCertificate {
  const certs = pems.map((pem) => {
    const { raw, fingerprint256 } = new X509Certificate(pem);
    return { raw, fingerprint256 } as DetailedPeerCertificate;
  });
  certs.forEach((c, i) => {
    (c as { issuerCertificate: DetailedPeerCertificate }).issuerCertificate = (certs[i + 1] ??
      c) as DetailedPeerCertificate;
  });
  return certs[0] as DetailedPeerCertificate;
}

describe("client CA rotation: chains", () => {
  const a = makeTestCerts(["agent-2"]);
  const b = makeTestCerts();

  test("a certificate chains to the CA that signed it, not to another", () => {
    assert.equal(new CaBundle(a.ca).chains(chain(a.clientCert)), true);
    assert.equal(new CaBundle(b.ca).chains(chain(a.clientCert)), false);
  });

  test("a bundle of both CAs (an overlap while rotating) keeps both; order does not matter", () => {
    const both = new CaBundle(Buffer.concat([b.ca, Buffer.from("\n"), a.ca]));
    assert.equal(both.size, 2);
    assert.equal(both.chains(chain(a.clientCert)), true);
    assert.equal(both.chains(chain(b.clientCert)), true);
  });

  test("a chain that ends in its CA is judged by the CA, the issuer's verdict reused", () => {
    const same = new CaBundle(a.ca);
    const other = new CaBundle(b.ca);
    const second = a.clients["agent-2"]?.cert as Buffer;
    for (const leaf of [a.clientCert, second]) {
      assert.equal(same.chains(chain(leaf, a.ca)), true);
      // The second leaf meets the issuer's remembered verdict: still refused.
      assert.equal(other.chains(chain(leaf, a.ca)), false);
    }
    // A certificate of a CA with the same name that did not sign it does not pass.
    assert.equal(new CaBundle(a.ca).chains(chain(b.clientCert)), false);
  });

  test("text around and between the PEM blocks and unreadable blocks are skipped", () => {
    const junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    const bundle = new CaBundle(`# rotated 2026-12-05\n${junk}${a.ca.toString()}trailing`);
    assert.equal(bundle.size, 1);
    assert.equal(bundle.chains(chain(a.clientCert)), true);
    assert.equal(new CaBundle("").size, 0);
    assert.equal(new CaBundle("").chains(chain(a.clientCert)), false);
  });
});
