/**
 * client-ca.ts: which open connections a new client CA still admits. Real certificates made
 * with openssl (helpers/certs.ts); the chain is given as the TLS layer reports it
 * (getPeerCertificate(true): the leaf, then each issuer the client sent, the last its own).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import type { DetailedPeerCertificate } from "node:tls";
import { caBundle, chainsTo } from "../../src/opamp/client-ca.js";
import { makeTestCerts } from "../helpers/certs.js";

/** A chain as getPeerCertificate(true) shows it; the last certificate names itself. */
function chain(...pems: Buffer[]): DetailedPeerCertificate {
  const certs = pems.map(
    (pem) => ({ raw: new X509Certificate(pem).raw }) as DetailedPeerCertificate,
  );
  certs.forEach((c, i) => {
    (c as { issuerCertificate: DetailedPeerCertificate }).issuerCertificate = (certs[i + 1] ??
      c) as DetailedPeerCertificate;
  });
  return certs[0] as DetailedPeerCertificate;
}

describe("client CA rotation: chains", () => {
  const a = makeTestCerts();
  const b = makeTestCerts();

  test("a certificate chains to the CA that signed it, not to another", () => {
    assert.equal(chainsTo(chain(a.clientCert), caBundle(a.ca)), true);
    assert.equal(chainsTo(chain(a.clientCert), caBundle(b.ca)), false);
  });

  test("a bundle of both CAs (an overlap while rotating) keeps both; order does not matter", () => {
    const both = caBundle(Buffer.concat([b.ca, Buffer.from("\n"), a.ca]));
    assert.equal(both.length, 2);
    assert.equal(chainsTo(chain(a.clientCert), both), true);
    assert.equal(chainsTo(chain(b.clientCert), both), true);
  });

  test("a chain the client sent with its CA is judged by the CA, whoever is in it", () => {
    assert.equal(chainsTo(chain(a.clientCert, a.ca), caBundle(a.ca)), true);
    assert.equal(chainsTo(chain(a.clientCert, a.ca), caBundle(b.ca)), false);
    // A certificate that claims the new CA's name but is not signed by it does not pass.
    assert.equal(chainsTo(chain(b.clientCert), caBundle(a.ca)), false);
  });

  test("text around and between the PEM blocks and unreadable blocks are skipped", () => {
    const junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    const bundle = caBundle(`# rotated 2026-12-05\n${junk}${a.ca.toString()}trailing`);
    assert.equal(bundle.length, 1);
    assert.equal(chainsTo(chain(a.clientCert), bundle), true);
    assert.deepEqual(caBundle(""), []);
    assert.equal(chainsTo(chain(a.clientCert), []), false);
  });
});
