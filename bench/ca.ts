/**
 * bench:ca: what the agent CA costs per agent: checking a CSR (parse, signature, identity)
 * and signing a certificate, with an EC P-256 CA, for N distinct agent keys (made with
 * WebCrypto, not counted), and the gate's per-handshake check of an issued certificate.
 * Prints figures; asserts nothing.
 */
import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { AgentCa, checkCsr } from "../src/ca/index.js";

x509.cryptoProvider.set(webcrypto as never);
const N = Number(process.env.BENCH_CA_AGENTS ?? 200);
const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function main(): Promise<void> {
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: "CN=bench CA",
    keys: caKeys as never,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", caKeys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64")}\n-----END PRIVATE KEY-----\n`;
  const ca = await AgentCa.load(caCert.toString("pem"), keyPem);
  const csrs: { uid: string; pem: string }[] = [];
  for (let i = 0; i < N; i++) {
    const uid = `0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, "0")}`;
    const keys = await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"]);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${uid}`,
      keys: keys as never,
      signingAlgorithm: alg,
    });
    csrs.push({ uid, pem: csr.toString("pem") });
  }
  let checkMs = 0;
  let issueMs = 0;
  const issued: string[] = [];
  for (const { uid, pem } of csrs) {
    const t0 = performance.now();
    const { spki } = await checkCsr(pem, uid);
    const t1 = performance.now();
    const cert = await ca.issue({ uid, group: "edge", spki, validityMs: 3_600_000 });
    issueMs += performance.now() - t1;
    checkMs += t1 - t0;
    issued.push(cert.pem);
  }
  const raws = issued.map((p) => new X509Certificate(p).raw);
  const t2 = performance.now();
  for (const raw of raws) if (!ca.signed(raw)) throw new Error("not signed by the CA");
  const verifyMs = performance.now() - t2;
  const f = (ms: number) => `${(ms / N).toFixed(2)} ms`;
  console.log(`bench:ca  ${N} agents, EC P-256 CA`);
  console.log(`  CSR check (parse, signature, identity)   ${f(checkMs)} per CSR`);
  console.log(`  certificate signing                      ${f(issueMs)} per certificate`);
  console.log(`  issued-by-CA check (uncached handshake)  ${f(verifyMs)} per certificate`);
  console.log(`  → ${Math.round(1000 / ((checkMs + issueMs) / N))} CSRs/s on one core`);
}

await main();
