/**
 * The credential authority against real Redis, with a clock the test moves: per-agent token
 * minting (stored hashed, scoped to the group, rotated at the configured fraction of its
 * lifetime, re-sent only by the process that minted it), certificate issuance for a CSR and
 * its rotation on the same key, CSRs asking for another identity, and the deny list (API
 * revocations heard at once by another replica, Git's list replacing itself).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import type { PeerCertificate } from "node:tls";
import { AgentCa } from "../../src/ca/index.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities, type AgentState } from "../../src/opamp/index.js";
import { makeCsr, makeTestCerts } from "../helpers/certs.js";
import { authorityMaker } from "../helpers/credential-authority.js";
import { capturedLogger } from "../helpers/logger.js";
import { waitFor } from "../helpers/wait.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const HOUR = 3_600_000;

function agent(uid = UID): AgentState {
  const a = emptyAgentState(uid, "websocket", 0);
  a.capabilities = AgentCapabilities.AcceptsOpAMPConnectionSettings;
  return a;
}

/** What the TLS layer would hand the gate for a certificate issued to `uid`. */
const peer = (uid: string, serial = "01") =>
  ({
    serialNumber: serial.toUpperCase(),
    subjectaltname: `URI:urn:opamp-gitops:agent:${uid}, URI:urn:opamp-gitops:group:edge`,
  }) as PeerCertificate;

const bearer = (c: { headers?: { key: string; value: string }[] } | undefined) =>
  c?.headers?.find((h) => h.key === "Authorization")?.value.replace(/^Bearer /, "");

describe("agent credential authority", () => {
  let now = 1_800_000_000_000;
  const log = capturedLogger("info");

  const authorities = authorityMaker(() => ({
    logger: log.logger,
    // The rotation steps below are fractions of these 10 h.
    certificateValidityMs: 10 * HOUR,
    tokenValidityMs: 10 * HOUR,
    mintTokens: true,
    now: () => now,
  }));
  const authority = authorities.make;

  it("mints a per-agent token scoped to the group, stored only as its digest", async () => {
    const auth = authority();
    await auth.start();
    const offered = await auth.credentialFor(agent(), undefined);
    const token = bearer(offered);
    assert.ok(token && token.length >= 40, JSON.stringify(offered));
    assert.deepEqual(auth.mintedToken(token), { scope: "groups=edge" });
    assert.equal(auth.mintedToken("not-a-token"), undefined);
    // Asked again: the same token, re-sent from this process' memory.
    assert.equal(bearer(await auth.credentialFor(agent(), undefined)), token);
    // Redis holds its digest, never the token.
    const { redis } = authorities;
    for (const key of await redis.redis.keys(`${redis.prefix}:*`)) {
      const dump = await redis.redis.dumpBuffer(key);
      assert.ok(!dump?.toString("latin1").includes(token), `${key} holds the token`);
    }
    // An agent that does not accept connection settings, or has no group, gets none.
    const plain = agent("0190a1b2-c3d4-7e5f-8a9b-000000000001");
    plain.capabilities = 0n;
    assert.equal(await auth.credentialFor(plain, undefined), undefined);
    const nowhere = authority({ groupOf: () => undefined });
    assert.equal(await nowhere.credentialFor(agent(), undefined), undefined);
  });

  it("rotates a token after the configured fraction of its lifetime; the old one lasts until it expires", async () => {
    const auth = authority();
    await auth.start();
    const first = await auth.credentialFor(agent(), undefined);
    now += 6 * HOUR; // 60 %: not yet
    assert.equal((await auth.credentialFor(agent(), undefined))?.id, first?.id);
    now += 1 * HOUR; // 70 % > 66 %
    const second = await auth.credentialFor(agent(), undefined);
    assert.notEqual(second?.id, first?.id);
    assert.ok(auth.mintedToken(bearer(second) as string));
    assert.ok(auth.mintedToken(bearer(first) as string), "the previous token still works");
    now += 4 * HOUR; // past the first token's expiry
    assert.equal(auth.mintedToken(bearer(first) as string), null);
  });

  it("after a restart a token cannot be re-sent: renew mints a new one", async () => {
    const before = authority();
    await before.start();
    const first = await before.credentialFor(agent(), undefined);
    const after = authority();
    await after.start();
    const known = await after.credentialFor(agent(), undefined);
    assert.equal(known?.id, first?.id);
    assert.equal(known?.headers, undefined, "the plaintext never left the first process");
    assert.ok(after.mintedToken(bearer(first) as string), "the other replica accepts it");
    const renewed = await after.renew(agent());
    assert.notEqual(renewed?.id, first?.id);
    assert.ok(bearer(renewed));
  });

  it("signs a CSR, rotates the certificate on the same key, refuses a CSR for another identity", async () => {
    const certs = makeTestCerts();
    const auth = authority({ ca: await AgentCa.load(certs.ca, certs.caKey), mintTokens: false });
    await auth.start();
    const wrong = makeCsr("/CN=0190a1b2-c3d4-7e5f-8a9b-000000000002");
    assert.equal(await auth.credentialFor(agent(), wrong.csr), undefined);
    assert.ok(log.lines.some((l) => l.msg === "CSR refused" && l.code === "CSR_WRONG_IDENTITY"));
    const own = makeCsr(`/CN=${UID}`);
    const issued = await auth.credentialFor(agent(), own.csr);
    assert.ok(issued?.certificate);
    const cert = new X509Certificate(Buffer.from(issued.certificate.cert));
    assert.equal(cert.serialNumber.toLowerCase(), issued.id);
    assert.equal(
      Buffer.from(issued.certificate.caCert).toString(),
      new X509Certificate(certs.ca).toString(),
    );
    // Later messages carry no CSR: the same certificate until 66 % of its life.
    now += 6 * HOUR;
    assert.equal((await auth.credentialFor(agent(), undefined))?.id, issued.id);
    now += 1 * HOUR;
    const rotated = await auth.credentialFor(agent(), undefined);
    assert.ok(rotated?.certificate && rotated.id !== issued.id);
    const next = new X509Certificate(Buffer.from(rotated.certificate.cert));
    assert.ok(next.publicKey.equals(cert.publicKey), "rotation re-signs the agent's key");
    assert.deepEqual(await auth.issued(UID).then((i) => i.certificate?.serial), rotated.id);
  });

  it("an API revocation refuses the agent's certificates and tokens, on every replica", async () => {
    const one = authority();
    const two = authority();
    await one.start();
    await two.start();
    const token = bearer(await one.credentialFor(agent(), undefined)) as string;
    const closed: string[][] = [];
    const revoker = authority({ onRevoked: (uids) => closed.push([...uids]) });
    await revoker.start();
    assert.equal(revoker.refuseCertificate(peer(UID)), false);
    const record = await revoker.revoke(UID, "api:alice via 127.0.0.1");
    assert.equal(record.by, "api:alice via 127.0.0.1");
    assert.deepEqual(closed, [[UID]]);
    assert.equal(revoker.refuseCertificate(peer(UID)), true);
    assert.equal(revoker.refuseCertificate(peer("0190a1b2-c3d4-7e5f-8a9b-000000000003")), false);
    assert.equal(revoker.mintedToken(token), null, "its tokens are refused");
    // The other replicas hear it on the revocation channel (their poll is a minute off).
    await waitFor(
      "the other replicas refuse the token",
      () => one.mintedToken(token) === null && two.mintedToken(token) === null,
    );
    assert.equal(two.refuseCertificate(peer(UID)), true);
    assert.deepEqual(two.revocation(UID), record);
    // A revoked agent is offered nothing new.
    assert.equal(await two.credentialFor(agent(), undefined), undefined);
    // Revoking again keeps the first record.
    assert.deepEqual(await revoker.revoke(UID, "api:bob via ::1"), record);
  });

  it("Git's deny list replaces itself: a uid removed from it may connect again", async () => {
    const auth = authority();
    await auth.start();
    const token = bearer(await auth.credentialFor(agent(), undefined)) as string;
    auth.setGitRevoked([UID], "abc123");
    assert.equal(auth.mintedToken(token), null);
    assert.equal(auth.refuseCertificate(peer(UID)), true);
    assert.deepEqual(auth.revocation(UID)?.by, "git:abc123");
    auth.setGitRevoked([UID], "def456");
    assert.deepEqual(auth.revocation(UID)?.by, "git:abc123", "the first commit that listed it");
    auth.setGitRevoked([], "0f0f0f");
    assert.equal(auth.revocation(UID), undefined);
    assert.deepEqual(auth.mintedToken(token), { scope: "groups=edge" });
  });
});
