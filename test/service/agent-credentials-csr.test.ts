/**
 * How often the credential authority checks and signs, against real Redis and a real CA, with
 * a clock the test moves: a CSR repeated in every message is checked once and answered with
 * the certificate already issued for its key (one signature); a new key gets a new
 * certificate; a client sending fresh keys gets at most one certificate per interval (and
 * keeps the one it has); the per-agent cache evicts one agent at a time past its bound.
 */
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { beforeEach, describe, it } from "node:test";
import { AgentCa } from "../../src/ca/index.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import type { AgentState } from "../../src/opamp/index.js";
import { makeCsr, makeTestCerts } from "../helpers/certs.js";
import { authorityMaker } from "../helpers/credential-authority.js";
import { capturedLogger } from "../helpers/logger.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const MINUTE = 60_000;

const agent = (uid = UID): AgentState => emptyAgentState(uid, "websocket", 0);
const spkiOf = (keyPem: Buffer) =>
  createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
const publicKey = (pem: Uint8Array) =>
  new X509Certificate(Buffer.from(pem)).publicKey.export({ type: "spki", format: "der" });

describe("agent credential authority: CSR checks, reuse and rate limit", () => {
  let now = 1_800_000_000_000;
  const certs = makeTestCerts();
  let ca: AgentCa;
  let log: ReturnType<typeof capturedLogger>;

  const authorities = authorityMaker(() => ({
    logger: log.logger,
    ca,
    csrIntervalMs: 10 * MINUTE,
    now: () => now,
  }));
  const authority = authorities.make;

  beforeEach(async () => {
    ca ??= await AgentCa.load(certs.ca, certs.caKey);
    log = capturedLogger("info");
  });

  it("the same CSR sent 3 times is checked and signed once; a new key gets a new certificate", async () => {
    const auth = authority();
    await auth.start();
    const first = makeCsr(`/CN=${UID}`);
    const offers = [];
    for (let i = 0; i < 3; i++) {
      offers.push(await auth.credentialFor(agent(), first.csr));
      now += MINUTE;
    }
    assert.equal(auth.stats.signed, 1, JSON.stringify(auth.stats));
    assert.equal(auth.stats.csrChecks, 1);
    assert.equal(auth.stats.csrCacheHits, 2);
    assert.equal(auth.stats.reused, 2);
    assert.deepEqual(
      offers.map((o) => o?.id),
      [offers[0]?.id, offers[0]?.id, offers[0]?.id],
    );
    // Another replica (its own caches) answers the same CSR from the stored certificate.
    const other = authority();
    await other.start();
    assert.equal((await other.credentialFor(agent(), first.csr))?.id, offers[0]?.id);
    assert.equal(other.stats.signed, 0);
    // A new key, past the interval: a new certificate, for that key.
    now += 10 * MINUTE;
    const second = makeCsr(`/CN=${UID}`);
    const renewed = await auth.credentialFor(agent(), second.csr);
    assert.ok(renewed?.certificate && renewed.id !== offers[0]?.id);
    assert.equal(auth.stats.signed, 2);
    assert.ok(publicKey(renewed.certificate.cert).equals(spkiOf(second.key)), "for the new key");
    assert.ok(!publicKey(renewed.certificate.cert).equals(spkiOf(first.key)));
    // A refused CSR repeated is refused from the cache, and logged once.
    const wrong = makeCsr("/CN=someone-else");
    for (let i = 0; i < 3; i++) await auth.credentialFor(agent(), wrong.csr);
    assert.equal(auth.stats.csrChecks, 3, "first, second, and the wrong one once");
    const warned = log.lines.filter(
      (l) => l.msg === "CSR refused" && l.code === "CSR_WRONG_IDENTITY",
    );
    assert.equal(warned.length, 1);
  });

  it("a client sending fresh CSRs gets at most one certificate per interval, and keeps its own", async () => {
    const auth = authority();
    await auth.start();
    const issued = await auth.credentialFor(agent(), makeCsr(`/CN=${UID}`).csr);
    assert.ok(issued?.certificate);
    for (let i = 0; i < 4; i++) {
      now += MINUTE;
      const answer = await auth.credentialFor(agent(), makeCsr(`/CN=${UID}`).csr);
      assert.equal(answer?.id, issued.id, "the certificate it already has");
    }
    assert.equal(auth.stats.signed, 1);
    assert.equal(auth.stats.rateLimited, 4);
    const limited = log.lines.filter(
      (l) => l.msg === "CSR refused" && l.code === "CSR_RATE_LIMITED",
    );
    assert.equal(limited.length, 4);
    assert.match(
      String((limited[0]?.err as { message?: string })?.message),
      /--agent-csr-interval/,
    );
    // Another replica counts the same signing (it is in the agent's record in Redis).
    const other = authority();
    await other.start();
    assert.equal((await other.credentialFor(agent(), makeCsr(`/CN=${UID}`).csr))?.id, issued.id);
    assert.equal(other.stats.rateLimited, 1);
    // Once the interval has passed since the last signing, a new key is signed again.
    now += 6 * MINUTE;
    const next = await auth.credentialFor(agent(), makeCsr(`/CN=${UID}`).csr);
    assert.ok(next?.certificate && next.id !== issued.id);
    assert.equal(auth.stats.signed, 2);
    // 0 turns the limit off.
    const open = authority({ csrIntervalMs: 0 });
    await open.start();
    const uid = "0190a1b2-c3d4-7e5f-8a9b-000000000009";
    await open.credentialFor(agent(uid), makeCsr(`/CN=${uid}`).csr);
    await open.credentialFor(agent(uid), makeCsr(`/CN=${uid}`).csr);
    assert.equal(open.stats.signed, 2);
  });

  it("the per-agent cache evicts the least recently used agent, one at a time", async () => {
    const auth = authority({ maxCachedRecords: 2 });
    await auth.start();
    const uid = (n: number) => `0190a1b2-c3d4-7e5f-8a9b-00000000000${n}`;
    for (const n of [1, 2]) await auth.issued(uid(n));
    assert.equal(auth.stats.recordReads, 2);
    await auth.issued(uid(1)); // a hit: 1 is now the most recently used
    assert.equal(auth.stats.recordReads, 2);
    await auth.issued(uid(3)); // evicts 2 alone
    assert.equal(auth.stats.recordReads, 3);
    assert.equal(auth.stats.recordsCached, 2);
    await auth.issued(uid(1));
    await auth.issued(uid(3));
    assert.equal(auth.stats.recordReads, 3, "1 and 3 stayed cached");
    await auth.issued(uid(2));
    assert.equal(auth.stats.recordReads, 4, "2 was evicted");
  });
});
