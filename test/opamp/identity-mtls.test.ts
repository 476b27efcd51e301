/**
 * Instance uid ownership under mutual TLS, end to end: the credential is the client
 * certificate (no bearer tokens). A second client presenting another certificate of the same
 * CA and claiming a connected agent's uid, with no description or with a copy of the victim's
 * (descriptions are public on the status branch), is handed `new_instance_uid`, never gets
 * the victim's config, never ends its session and changes nothing stored; over HTTPS and WSS
 * both ways. The same certificate reconnecting with the same description takes its uid over.
 * A certificate the agent CA issued names its uid: used for another uid (connected or not), it
 * is refused with an error over HTTPS and WSS, and nothing is stored for that uid. Only the
 * certificate in the uid's record proves the agent: an older one signed for the uid (a
 * bootstrap credential holder may have had one signed while the uid was offline) does not
 * take a live session over.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import type WebSocket from "ws";
import { AgentCa } from "../../src/ca/index.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import {
  AgentCapabilities as Caps,
  RemoteConfigStatus,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import { frameWebSocketMessage } from "../../src/opamp/framing.js";
import { newInstanceUid, uidToString } from "../../src/opamp/instance-uid.js";
import type { AgentToServer } from "../../src/opamp/messages.js";
import { AgentCredentialAuthority } from "../../src/service/agent-credentials.js";
import { type AgentTls, TestAgent } from "../helpers/agent.js";
import { makeCsr, makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;
const description = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});
const newUid = (m: Record<string, unknown>) =>
  (m.agentIdentification as { newInstanceUid: Uint8Array } | null)?.newInstanceUid;
const forgedFailure = (host?: string): Partial<AgentToServer> => ({
  capabilities: CAPS,
  ...(host ? { agentDescription: description(host) } : {}),
  remoteConfigStatus: {
    lastRemoteConfigHash: new Uint8Array(32),
    status: RemoteConfigStatus.FAILED,
    errorMessage: "forged",
  },
});

describe("instance uid ownership with client certificates (mTLS)", () => {
  let certs: TestCerts;
  let t: TestServer;
  let victimTls: AgentTls;
  let attackerTls: AgentTls;
  const open: TestAgent[] = [];
  const agent = async (transport: "websocket" | "http", tls: AgentTls, uid?: Uint8Array) => {
    const a = new TestAgent({ transport, url: t.url, tls, ...(uid ? { uid } : {}) });
    await a.connect();
    open.push(a);
    return a;
  };

  before(async () => {
    certs = makeTestCerts(["agent-2"]);
    t = await startTestServer({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
    });
    t.desired.all = { config: yamlConfig({ "secret.yaml": "password: hunter2\n" }) };
    victimTls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const other = certs.clients["agent-2"];
    assert.ok(other);
    attackerTls = { ca: certs.ca, cert: other.cert, key: other.key };
  });
  after(async () => {
    for (const a of open) a.close();
    await t?.close();
  });

  for (const victimTransport of ["websocket", "http"] as const) {
    for (const attackerTransport of ["websocket", "http"] as const) {
      test(`another certificate over ${attackerTransport === "http" ? "HTTPS" : "WSS"} claiming a ${victimTransport === "http" ? "HTTPS" : "WSS"} agent's uid gets a new uid and nothing else`, async () => {
        const host = `victim-${victimTransport}-${attackerTransport}`;
        const v = await agent(victimTransport, victimTls);
        await v.send({ capabilities: CAPS, agentDescription: description(host) });
        const served = await v.send({ capabilities: CAPS, agentDescription: description(host) });
        const offered = [served, ...v.received].some((m) => m.remoteConfig);
        assert.ok(offered, "the victim is served its config");
        const uid = uidToString(v.uid);
        const stored = await t.server.store.load(uid);
        assert.match(stored?.credential ?? "", /^cert:[0-9a-f]{64}$/, "owned by its certificate");
        const disconnected: string[] = [];
        const off = t.server.events.on("disconnected", (e) => {
          if (e.instanceUid === uid) disconnected.push(e.reason);
        });
        defer(() => off());
        // Without a description, then with a copy of the victim's.
        for (const copy of [undefined, host]) {
          const attacker = await agent(attackerTransport, attackerTls, v.uid);
          attacker.seq = v.seq;
          const reply = await attacker.send(forgedFailure(copy));
          assert.equal(newUid(reply)?.length, 16, `handed a new instance uid (${copy ?? "bare"})`);
          assert.equal(reply.remoteConfig, null, "never the victim's config");
          assert.ok(
            attacker.received.every((m) => m.remoteConfig === null),
            "nothing pushed to the attacker",
          );
        }
        // The victim keeps its session, its state and its certificate's ownership.
        assert.equal((await v.send({ capabilities: CAPS })).errorResponse, null);
        const now = await t.server.store.load(uid);
        assert.equal(now?.connected, true);
        assert.equal(now?.transport, victimTransport);
        assert.equal(now?.remoteConfigStatus, null, "no forged report stored");
        assert.equal(now?.credential, stored?.credential);
        assert.deepEqual(disconnected, []);
        if (victimTransport === "websocket")
          assert.equal((v.socket as WebSocket).readyState, 1, "victim socket still open");
      });
    }
  }

  test("the same certificate reconnecting with the same description takes its uid over", async () => {
    const v = await agent("websocket", victimTls);
    await v.send({ capabilities: CAPS, agentDescription: description("reconnects") });
    const closed = once(v.socket as WebSocket, "close");
    const again = await agent("websocket", victimTls, v.uid);
    again.seq = v.seq;
    const reply = await again.send({
      capabilities: CAPS,
      agentDescription: description("reconnects"),
    });
    assert.equal(newUid(reply), undefined, "no new uid for the agent itself");
    await closed; // the old socket is replaced
    assert.equal((await t.server.store.load(uidToString(v.uid)))?.connected, true);
  });
});

describe("a certificate the agent CA issued speaks only for its own uid", () => {
  let t: TestServer;
  let tls: AgentTls;
  let bootstrap: AgentTls;
  let certs: TestCerts;
  let owner: Uint8Array;
  let redis: Awaited<ReturnType<typeof testRedis>>;
  let authority: AgentCredentialAuthority;
  const open: TestAgent[] = [];

  before(async () => {
    certs = makeTestCerts();
    bootstrap = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    redis = await testRedis();
    authority = new AgentCredentialAuthority({
      redis: redis.redis,
      prefix: redis.prefix,
      logger: capturedLogger().logger,
      groupOf: () => "edge",
      ca: await AgentCa.load(certs.ca, certs.caKey),
      certificateValidityMs: 3_600_000,
      tokenValidityMs: 3_600_000,
      rotateAt: 0.66,
      mintTokens: false,
      maxCsrBytes: 8192,
    });
    owner = newInstanceUid();
    const csr = makeCsr(`/CN=${uidToString(owner)}`);
    const issued = await authority.credentialFor(
      emptyAgentState(uidToString(owner), "http", 0),
      csr.csr,
    );
    assert.ok(issued?.certificate);
    tls = { ca: certs.ca, cert: Buffer.from(issued.certificate.cert), key: csr.key };
    t = await startTestServer({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
      gate: authority,
      issuer: authority,
      certificateScope: (names, cert) => authority.certificateScope(names, cert),
    });
    t.desired.all = { config: yamlConfig({ "secret.yaml": "password: hunter2\n" }) };
  });
  after(async () => {
    for (const a of open) a.close();
    await t?.close();
    authority?.close();
    await redis?.close();
  });

  for (const transport of ["websocket", "http"] as const) {
    test(`over ${transport === "http" ? "HTTPS" : "WSS"}: another uid is refused, its own is served`, async () => {
      // An offline uid: nothing else would refuse it (no connected session owns it).
      for (const uid of [newInstanceUid()]) {
        const a = new TestAgent({ transport, url: t.url, tls, uid });
        await a.connect();
        open.push(a);
        const reply = await a.send(forgedFailure("impostor"));
        assert.match(
          (reply.errorResponse as { errorMessage?: string } | null)?.errorMessage ?? "",
          new RegExp(
            `issued to instance uid ${uidToString(owner)}; it cannot speak for ${uidToString(uid)}`,
          ),
        );
        assert.equal(newUid(reply), undefined);
        assert.equal(reply.remoteConfig, null, "no config for the other uid");
        assert.equal(await t.server.store.load(uidToString(uid)), undefined, "nothing stored");
      }
      const own = new TestAgent({ transport, url: t.url, tls, uid: owner });
      await own.connect();
      open.push(own);
      const served = await own.send({
        capabilities: CAPS,
        agentDescription: description(transport),
      });
      assert.equal(served.errorResponse, null);
      assert.ok(
        [served, ...own.received].some((m) => m.remoteConfig),
        "its own uid is served",
      );
      own.close();
    });
  }

  for (const transport of ["websocket", "http"] as const) {
    test(`over ${transport === "http" ? "HTTPS" : "WSS"}: switching from a bootstrap certificate to the issued one keeps the uid`, async () => {
      const uid = newInstanceUid();
      const csr = makeCsr(`/CN=${uidToString(uid)}`);
      const issued = await authority.credentialFor(
        emptyAgentState(uidToString(uid), transport, 0),
        csr.csr,
      );
      assert.ok(issued?.certificate);
      const before = new TestAgent({ transport, url: t.url, tls: bootstrap, uid });
      await before.connect();
      open.push(before);
      await before.send({
        capabilities: CAPS,
        agentDescription: description(`switch-${transport}`),
      });
      // The bootstrap session still looks connected (an HTTP agent's until liveness runs out).
      const after = new TestAgent({
        transport,
        url: t.url,
        tls: { ca: certs.ca, cert: Buffer.from(issued.certificate.cert), key: csr.key },
        uid,
      });
      await after.connect();
      open.push(after);
      after.seq = before.seq;
      const reply = await after.send({
        capabilities: CAPS,
        agentDescription: description(`switch-${transport}`),
      });
      assert.equal(newUid(reply), undefined, "no new uid for the agent itself");
      assert.equal(reply.errorResponse, null);
      // A new session: its config is offered again over the new credential.
      assert.ok(
        [reply, ...after.received].some((m) => m.remoteConfig),
        "served again",
      );
      const stored = await t.server.store.load(uidToString(uid));
      const fingerprint = new X509Certificate(Buffer.from(issued.certificate.cert)).fingerprint256;
      assert.equal(
        stored?.credential,
        `cert:${fingerprint.replace(/:/g, "").toLowerCase()}`,
        "owned by the issued certificate now",
      );
    });
  }

  for (const transport of ["websocket", "http"] as const) {
    test(`over ${transport === "http" ? "HTTPS" : "WSS"}: an older certificate signed for the uid does not beat the live agent`, async () => {
      const uid = newInstanceUid();
      const issue = async (): Promise<AgentTls> => {
        const csr = makeCsr(`/CN=${uidToString(uid)}`);
        const issued = await authority.credentialFor(
          emptyAgentState(uidToString(uid), transport, 0),
          csr.csr,
        );
        assert.ok(issued?.certificate);
        return { ca: certs.ca, cert: Buffer.from(issued.certificate.cert), key: csr.key };
      };
      const stale = await issue(); // signed for a claimant while the uid was offline
      const current = await issue(); // the agent's own, the one in its record
      const v = new TestAgent({ transport, url: t.url, tls: current, uid });
      await v.connect();
      open.push(v);
      await v.send({ capabilities: CAPS, agentDescription: description(`live-${transport}`) });
      const stored = await t.server.store.load(uidToString(uid));
      assert.ok(stored?.credential);

      const claimant = new TestAgent({ transport, url: t.url, tls: stale, uid });
      await claimant.connect();
      open.push(claimant);
      claimant.seq = v.seq;
      const reply = await claimant.send(forgedFailure("impostor"));
      assert.equal(reply.remoteConfig, null, "never the agent's config");
      assert.match(
        (reply.errorResponse as { errorMessage?: string } | null)?.errorMessage ?? "",
        /bound to instance uid/,
      );
      const now = await t.server.store.load(uidToString(uid));
      assert.equal(now?.credential, stored.credential, "still the agent's certificate");
      assert.equal(now?.remoteConfigStatus, null, "no forged report stored");
      if (transport === "websocket")
        assert.equal((v.socket as WebSocket).readyState, 1, "the agent's socket still open");
    });
  }

  test("a flood of messages for other uids: each answered BAD_REQUEST and counted, logged at most once per interval with the count", async () => {
    const REFUSED = "refused messages for another uid than their client certificate's";
    const refusals = () => t.log.lines.filter((l) => l.msg === REFUSED);
    const linesBefore = refusals().length;
    const countedBefore = t.server.handler.stats.boundElsewhere;
    const started = Date.now();
    const a = new TestAgent({ transport: "websocket", url: t.url, tls, uid: owner });
    await a.connect();
    open.push(a);
    const N = 200;
    for (let i = 0; i < N; i++) {
      const reply = await a.send({ instanceUid: newInstanceUid(), capabilities: CAPS });
      const error = reply.errorResponse as { type?: number; errorMessage?: string } | null;
      assert.equal(error?.type, ServerErrorResponseType.BadRequest, `message ${i} refused`);
      assert.match(error?.errorMessage ?? "", /it cannot speak for/);
    }
    a.close();
    assert.equal(t.server.handler.stats.boundElsewhere - countedBefore, N, "every one counted");
    // The interval (60 s default) began with an earlier test's refusal: at most one line more
    // (if that interval ended during the flood), not one per message.
    const intervals = Math.ceil((Date.now() - started) / 60_000);
    assert.ok(
      refusals().length - linesBefore <= intervals,
      `${refusals().length - linesBefore} lines`,
    );
    // Shutdown writes the pending count; every refusal is in some line's count.
    t.server.handler.close();
    const lines = refusals();
    assert.ok(lines.length - linesBefore <= intervals + 1);
    const logged = lines.flatMap((l) => l.refused as Array<{ boundUid: string; count: number }>);
    assert.ok(logged.every((r) => r.boundUid === uidToString(owner)));
    assert.equal(
      logged.reduce((sum, r) => sum + r.count, 0),
      t.server.handler.stats.boundElsewhere,
      "the counts add up to the refusals",
    );
    const last = lines.at(-1)?.refused as Array<{ count: number; remoteAddress: string }>;
    assert.ok((last[0]?.count ?? 0) >= N - 1, "the flood is in one line's count");
    assert.equal(lines.at(-1)?.level, 40, "a warning");
  });

  test("a burst for other uids processed after the peer hung up is logged with its address", async () => {
    const REFUSED = "refused messages for another uid than their client certificate's";
    const a = new TestAgent({ transport: "websocket", url: t.url, tls, uid: owner });
    await a.connect();
    const ws = a.socket as WebSocket;
    // A message of its own uid first (stored: Redis round trips), then refusals queued behind
    // it (a session's messages are handled in order), fewer than pause reading; then the peer
    // hangs up before they are handled.
    const N = 5;
    const counted = t.server.handler.stats.boundElsewhere;
    const frames = [
      encodeAgentToServer({ instanceUid: owner, sequenceNum: 0n, capabilities: CAPS }),
      ...Array.from({ length: N }, () =>
        encodeAgentToServer({ instanceUid: newInstanceUid(), capabilities: CAPS }),
      ),
    ];
    await Promise.all(
      frames.map(
        (f) =>
          new Promise<void>((resolve, reject) =>
            ws.send(frameWebSocketMessage(f), (err) => (err ? reject(err) : resolve())),
          ),
      ),
    );
    ws.terminate();
    const deadline = Date.now() + 5000;
    while (t.server.handler.stats.boundElsewhere - counted < N && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.server.handler.stats.boundElsewhere - counted, N);
    // The limiter was closed by the test before: every refusal is a line of its own.
    const line = t.log.lines.filter((l) => l.msg === REFUSED).at(-1);
    const refused = line?.refused as Array<{ remoteAddress: string }>;
    assert.match(refused[0]?.remoteAddress ?? "", /127\.0\.0\.1/);
  });
});
