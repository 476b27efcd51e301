import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import { AgentCa, AgentCaError, CsrError, checkCsr, issuedNames } from "../../src/ca/index.js";
import { makeCsr, makeTestCerts, type TestCerts } from "../helpers/certs.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/** The DER of a PEM block, and back, to tamper with a CSR's bytes. */
const der = (pem: Buffer) =>
  Buffer.from(
    pem
      .toString()
      .replace(/-----[^-]+-----/g, "")
      .replace(/\s+/g, ""),
    "base64",
  );
const pem = (bytes: Buffer) =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${(bytes.toString("base64").match(/.{1,64}/g) ?? []).join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CsrError, String(err));
    return err.code;
  }
  assert.fail("the CSR was accepted");
}

describe("agent CA: CSR checks", () => {
  it("accepts a CSR for the agent's own uid (CN and agent URI), or with an empty subject", async () => {
    const own = makeCsr(`/CN=${UID}`, [`URI:urn:opamp-gitops:agent:${UID}`]);
    assert.ok((await checkCsr(own.csr, UID)).spki.length > 50);
    assert.ok((await checkCsr(makeCsr("/").csr, UID)).spki.length > 50);
  });

  it("refuses another uid, a group, a host name or another subject field", async () => {
    const cases = [
      makeCsr("/CN=0190a1b2-c3d4-7e5f-8a9b-000000000000"),
      makeCsr(`/CN=${UID}`, ["URI:urn:opamp-gitops:group:prod"]),
      makeCsr(`/CN=${UID}`, ["DNS:agent.example"]),
      makeCsr(`/CN=${UID}/OU=prod`),
      makeCsr("/", ["URI:urn:opamp-gitops:agent:0190a1b2-c3d4-7e5f-8a9b-000000000000"]),
    ];
    for (const c of cases) assert.equal(await refusal(checkCsr(c.csr, UID)), "CSR_WRONG_IDENTITY");
  });

  it("refuses a CSR whose signature does not verify (bytes changed after signing)", async () => {
    const bytes = der(makeCsr(`/CN=${UID}`).csr);
    // The CN's last character lies inside the signed part; the DER stays well formed.
    const at = bytes.indexOf(Buffer.from(UID));
    assert.ok(at > 0);
    bytes[at + UID.length - 1] = (bytes[at + UID.length - 1] as number) ^ 0x01;
    const tampered = Buffer.from(pem(bytes));
    const code = await refusal(
      checkCsr(
        tampered,
        `${UID.slice(0, -1)}${String.fromCharCode(UID.charCodeAt(UID.length - 1) ^ 1)}`,
      ),
    );
    assert.equal(code, "CSR_BAD_SIGNATURE");
  });

  it("refuses an oversized CSR before parsing it, and bytes that are no CSR", async () => {
    const big = Buffer.concat([makeCsr(`/CN=${UID}`).csr, Buffer.alloc(9000, 0x20)]);
    assert.equal(await refusal(checkCsr(big, UID)), "CSR_TOO_LARGE");
    assert.equal(await refusal(checkCsr(makeCsr("/").csr, UID, 100)), "CSR_TOO_LARGE");
    assert.equal(await refusal(checkCsr("hello", UID)), "CSR_MALFORMED");
    assert.equal(
      await refusal(
        checkCsr(
          "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
          UID,
        ),
      ),
      "CSR_MALFORMED",
    );
  });
});

describe("agent CA: issuing", () => {
  let certs: TestCerts;
  before(() => {
    certs = makeTestCerts();
  });

  it("signs a client certificate naming the uid and group, verifiable with the CA", async () => {
    const ca = await AgentCa.load(certs.ca, certs.caKey);
    const { spki } = await checkCsr(makeCsr("/").csr, UID);
    const now = Date.now();
    const issued = await ca.issue({ uid: UID, group: "edge", spki, validityMs: 3_600_000, now });
    const cert = new X509Certificate(issued.pem);
    assert.ok(cert.verify(new X509Certificate(certs.ca).publicKey));
    assert.equal(cert.serialNumber.toLowerCase(), issued.serial);
    assert.match(issued.serial, /^[4-7][0-9a-f]{31}$/, "positive, no leading zero");
    assert.match(cert.subject, new RegExp(`CN=${UID}`));
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
    assert.equal(new Date(cert.validTo).getTime(), issued.notAfter);
    assert.ok(issued.notAfter - now <= 3_600_000 && issued.notAfter - now > 3_598_000);
    const names = (cert.subjectAltName ?? "").split(/,\s*/).map((n) => n.replace(/^URI:/, ""));
    assert.deepEqual(issuedNames(names), { uid: UID, groups: ["edge"] });
    assert.ok(ca.signed(cert.raw));
    assert.equal(
      ca.signed(new X509Certificate(certs.clientCert).raw),
      true,
      "the test client cert has the same CA",
    );
    const other = makeTestCerts();
    assert.equal(ca.signed(new X509Certificate(other.clientCert).raw), false);
  });

  it("refuses a key that is not the certificate's, and a certificate that is no CA", async () => {
    const other = makeTestCerts();
    await assert.rejects(AgentCa.load(certs.ca, other.caKey), AgentCaError);
    await assert.rejects(AgentCa.load(certs.clientCert, certs.clientKey), /not a CA/);
  });
});
