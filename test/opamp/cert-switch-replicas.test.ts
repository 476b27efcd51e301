/**
 * An agent switching from its bootstrap certificate to the one issued to it, across two
 * replicas (real servers, sockets, Redis and agent CA): its old session is still stored as
 * connected through the other, live replica, yet the issued certificate keeps the uid (no new
 * uid, which that certificate could never use). A certificate-bound connection asking for a
 * new uid is refused.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCa } from "../../src/ca/index.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentToServerFlags, AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { newInstanceUid, uidToString } from "../../src/opamp/instance-uid.js";
import { AgentCredentialAuthority } from "../../src/service/agent-credentials.js";
import { type AgentTls, TestAgent } from "../helpers/agent.js";
import { makeCsr, makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { testAuthorityOptions } from "../helpers/credential-authority.js";
import { capturedLogger } from "../helpers/logger.js";
import { startReplica, yamlConfig } from "../helpers/opamp-server.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;
const description = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});
const newUid = (m: Record<string, unknown>) =>
  (m.agentIdentification as { newInstanceUid: Uint8Array } | null)?.newInstanceUid;
const errorOf = (m: Record<string, unknown>) =>
  (m.errorResponse as { errorMessage?: string } | null)?.errorMessage;

describe("switching to the issued certificate across replicas", () => {
  let certs: TestCerts;
  let r: TestRedis;
  let authority: AgentCredentialAuthority;
  let bootstrap: AgentTls;
  const urls: string[] = [];
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    certs = makeTestCerts();
    bootstrap = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    r = await testRedis();
    const { logger } = capturedLogger("warn");
    authority = new AgentCredentialAuthority(
      testAuthorityOptions({
        redis: r,
        logger,
        ca: await AgentCa.load(certs.ca, certs.caKey),
        certificateValidityMs: 3_600_000,
        tokenValidityMs: 3_600_000,
        pollMs: 2000,
      }),
    );
    for (const id of ["a:1:aa", "b:2:bb"]) {
      const { server, liveness, url } = await startReplica(r, id, {
        tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
        gate: authority,
        issuer: authority,
        certificateScope: (names, cert) => authority.certificateScope(names, cert),
        desired: { desired: () => ({ config: yamlConfig({ "c.yaml": "a: 1\n" }) }) },
      });
      await liveness.tick();
      cleanups.push(() => server.close());
      urls.push(url);
    }
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    authority?.close();
    await r?.close();
  });

  /** A certificate issued to `uid` (as the reply to its CSR would carry). */
  const issue = async (uid: Uint8Array): Promise<AgentTls> => {
    const csr = makeCsr(`/CN=${uidToString(uid)}`);
    const issued = await authority.credentialFor(
      emptyAgentState(uidToString(uid), "http", 0),
      csr.csr,
    );
    assert.ok(issued?.certificate);
    return { ca: certs.ca, cert: Buffer.from(issued.certificate.cert), key: csr.key };
  };

  for (const transport of ["http", "websocket"] as const) {
    test(`over ${transport}: the issued certificate keeps the uid on the other replica`, async () => {
      const [urlA, urlB] = urls as [string, string];
      const uid = newInstanceUid();
      const viaA = new TestAgent({ transport, url: urlA, tls: bootstrap, uid });
      await viaA.connect();
      cleanups.push(() => viaA.close());
      const first = await viaA.send({ capabilities: CAPS, agentDescription: description("h") });
      assert.equal(errorOf(first), undefined);
      const stored = await r.redis.hget(`${r.prefix}:agent:${uidToString(uid)}`, "owner");
      assert.ok(stored?.startsWith("a:1:aa/"), "connected through a");

      const viaB = new TestAgent({ transport, url: urlB, tls: await issue(uid), uid });
      await viaB.connect();
      cleanups.push(() => viaB.close());
      viaB.seq = viaA.seq;
      const reply = await viaB.send({ capabilities: CAPS });
      assert.equal(newUid(reply), undefined, "no new uid for the agent itself");
      assert.equal(errorOf(reply), undefined);
      const owner = await r.redis.hget(`${r.prefix}:agent:${uidToString(uid)}`, "owner");
      assert.ok(owner?.startsWith("b:2:bb/"), "served by b now");
    });
  }

  test("a certificate-bound connection asking for a new uid is refused", async () => {
    const uid = newInstanceUid();
    const agent = new TestAgent({
      transport: "http",
      url: urls[0] ?? "",
      tls: await issue(uid),
      uid,
    });
    const reply = await agent.send({
      capabilities: CAPS,
      flags: AgentToServerFlags.RequestInstanceUid,
    });
    assert.equal(newUid(reply), undefined, "no uid this certificate could never use");
    assert.match(errorOf(reply) ?? "", /bound to instance uid/);
  });
});
