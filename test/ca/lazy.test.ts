/**
 * The CA module's light entry (lazy.ts): the service's modules load without @peculiar/x509
 * (~120 ms of a start), and its loaders give the same results as the whole module.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkCsr as wholeCheckCsr } from "../../src/ca/index.js";
import { CsrError, checkCsr, loadAgentCa } from "../../src/ca/lazy.js";
import { makeCsr, makeTestCerts, type TestCerts } from "../helpers/certs.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

describe("the CA module's light entry", () => {
  let certs: TestCerts;
  before(() => {
    certs = makeTestCerts();
  });

  it("serve's modules load without @peculiar/x509 or reflect-metadata", () => {
    // A fresh process: this test's own imports above already loaded them here.
    const serve = fileURLToPath(new URL("../../src/commands/serve.js", import.meta.url));
    const loaded = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { createRequire } from "node:module";
         await import(${JSON.stringify(serve)});
         const cache = Object.keys(createRequire(import.meta.url).cache);
         console.log(JSON.stringify(cache.filter((k) => /@peculiar|reflect-metadata|tsyringe/.test(k))));`,
      ],
      { encoding: "utf8" },
    );
    assert.deepEqual(JSON.parse(loaded), []);
  });

  it("loadAgentCa and checkCsr load the CA on first use and work as the whole module's", async () => {
    const ca = await loadAgentCa(certs.ca, certs.caKey);
    assert.equal(ca.certPem.trim(), certs.ca.toString().trim());
    const { csr } = makeCsr(`/CN=${UID}`);
    assert.deepEqual(await checkCsr(csr, UID), await wholeCheckCsr(csr, UID));
    await assert.rejects(checkCsr(csr, UID, 10), (err: unknown) => {
      assert.ok(err instanceof CsrError);
      assert.equal(err.code, "CSR_TOO_LARGE");
      return true;
    });
  });
});
