/**
 * Credentials that carry a scope, and rotation without a restart: token scopes and client
 * certificate scopes reach the agent state over both transports (and are stored), the tokens
 * file and the client CA are re-read when they change or on reload() (what SIGHUP calls).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import WebSocket from "ws";
import type { AgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import {
  AgentCredentials,
  boundUidOf,
  type ConfiguredToken,
  configuredTokenOf,
  parseAgentTokens,
} from "../../src/opamp/credentials.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { CredentialReloader } from "../../src/service/credential-reload.js";
import { agentTokens } from "../../src/settings.js";
import { postOpamp, TestAgent } from "../helpers/agent.js";
import { makeTestCerts } from "../helpers/certs.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const defer = deferred();

const body = (fill = 5) =>
  encodeAgentToServer({
    instanceUid: new Uint8Array(16).fill(fill),
    capabilities: Caps.ReportsStatus,
  });

/** Records the scopes each agent had when the provider was asked what to serve it. */
function recordScopes(t: TestServer): Map<string, readonly string[]> {
  const seen = new Map<string, readonly string[]>();
  t.desired.desired = (agent: Readonly<AgentState>) => {
    seen.set(agent.instanceUid, agent.scopes);
    return undefined;
  };
  return seen;
}

/** The HTTP status of a WebSocket upgrade with `token` (101 when it opened). */
async function upgradeStatus(url: string, token: string): Promise<number> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), {
    headers: { Authorization: `Bearer ${token}` },
  });
  ws.on("error", () => {});
  const status = await Promise.race([
    once(ws, "open").then(() => 101),
    once(ws, "unexpected-response").then(([, res]) => (res as { statusCode: number }).statusCode),
  ]);
  ws.terminate();
  return status;
}

/** Waits until `ok` holds: up to 15 s, checked every 50 ms. */
const until = (what: string, ok: () => Promise<boolean>) =>
  waitFor(what, ok, { timeoutMs: 15_000, intervalMs: 50 });

describe("credential scopes and rotation", () => {
  test("a token's scope reaches the agent state over both transports, is stored, and follows a new token once the old session ended", async () => {
    const t = await startTestServer({
      tokens: [{ token: "edge-token", scope: "groups=edge" }, "open-token"],
    });
    const seen = recordScopes(t);
    const changes: string[] = [];
    t.server.events.on("scopesChanged", (e) => changes.push(e.scopes.join("|")));
    defer(async () => {
      await t.close();
    });
    for (const transport of ["websocket", "http"] as const) {
      const a = new TestAgent({ transport, url: t.url, token: "edge-token" });
      await a.connect();
      await a.send({ capabilities: Caps.ReportsStatus });
      const uid = uidToString(a.uid);
      assert.deepEqual(seen.get(uid), ["groups=edge"], transport);
      await until(
        "stored",
        async () => (await t.server.store.load(uid))?.scopes[0] === "groups=edge",
      );
      a.close();
      // Another credential may not take over a connected uid (identity.test.ts); an HTTP
      // session has no close, so only the WebSocket agent comes back with a new token.
      if (transport === "http") continue;
      await until(
        "disconnected",
        async () => (await t.server.store.load(uid))?.connected === false,
      );
      // The same agent with an unscoped token: no scope any more, and the change is announced.
      const b = new TestAgent({ transport, url: t.url, token: "open-token", uid: a.uid });
      await b.connect();
      b.seq = a.seq;
      await b.send({ capabilities: Caps.ReportsStatus });
      assert.deepEqual(seen.get(uid), [], transport);
      b.close();
    }
    assert.deepEqual(changes, ["groups=edge", "", "groups=edge"]);
  });

  test("a client certificate's names give its scope over HTTPS and WSS, next to the token's", async () => {
    const certs = makeTestCerts();
    const names: string[][] = [];
    const t = await startTestServer({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
      tokens: [{ token: "edge-token", scope: "groups=edge" }],
      certificateScope: (n) => {
        names.push([...n]);
        return n.includes("agent-1") ? "groups=gateway" : undefined;
      },
    });
    const seen = recordScopes(t);
    const tlsOpts = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    defer(async () => {
      await t.close();
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        t.url,
        {
          method: "POST",
          ...tlsOpts,
          agent: false,
          headers: {
            "Content-Type": "application/x-protobuf",
            Authorization: "Bearer edge-token",
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end(body(7));
    });
    assert.equal(status, 200);
    assert.deepEqual(seen.get(uidToString(new Uint8Array(16).fill(7))), [
      "groups=edge",
      "groups=gateway",
    ]);
    const ws = new WebSocket(t.url.replace(/^https/, "wss"), {
      ...tlsOpts,
      headers: { Authorization: "Bearer edge-token" },
    });
    await once(ws, "open");
    ws.send(Buffer.concat([Buffer.from([0]), body(8)]));
    await once(ws, "message");
    ws.close();
    assert.deepEqual(seen.get(uidToString(new Uint8Array(16).fill(8))), [
      "groups=edge",
      "groups=gateway",
    ]);
    assert.equal(names[0]?.[0], "agent-1", "the subject CN comes first");
  });

  test("stillAdmits: after a rotation a session keeps its token only while it is listed with the same scope (a repeated token: its first line)", () => {
    const credentials = new AgentCredentials([
      { token: "a", scope: "groups=edge" },
      "b",
      { token: "b", scope: "groups=prod" },
    ]);
    const admitted = (token: string) => {
      const req = { headers: { authorization: `Bearer ${token}` }, socket: {} };
      assert.equal(credentials.admit(req as unknown as IncomingMessage), true);
      return configuredTokenOf(req as unknown as IncomingMessage) as ConfiguredToken;
    };
    const a = admitted("a");
    const b = admitted("b");
    assert.equal(b.scope, undefined, "the first line of a repeated token admits");
    assert.deepEqual([credentials.stillAdmits(a), credentials.stillAdmits(b)], [true, true]);
    // The same file read again (new entries): both sessions are kept.
    credentials.setTokens(parseAgentTokens("a groups=edge\nb\nb groups=prod\n"));
    assert.deepEqual([credentials.stillAdmits(a), credentials.stillAdmits(b)], [true, true]);
    credentials.setTokens(parseAgentTokens("a groups=edge,prod\nb\n"));
    assert.deepEqual([credentials.stillAdmits(a), credentials.stillAdmits(b)], [false, true]);
    credentials.setTokens(parseAgentTokens("c\n"));
    assert.equal(credentials.stillAdmits(b), false);
  });

  test("admit() reads the peer certificate once per request, gate and scope included", async () => {
    const certs = makeTestCerts();
    const seen: { reads: number; admitted: boolean; bound?: string }[] = [];
    const credentials = new AgentCredentials(
      [],
      (n) => (n.length > 0 ? "groups=edge" : undefined),
      {
        refuseCertificate: () => false,
        mintedToken: () => undefined,
        boundUid: (n) => n[0],
      },
    );
    const server = createHttpsServer({
      cert: certs.serverCert,
      key: certs.serverKey,
      ca: certs.ca,
      requestCert: true,
      rejectUnauthorized: true,
    });
    // The real TLS socket, its getPeerCertificate counted.
    let reads = 0;
    server.on("secureConnection", (socket: TLSSocket) => {
      const read = socket.getPeerCertificate.bind(socket);
      socket.getPeerCertificate = ((detailed?: boolean) => {
        reads++;
        return read(detailed as true);
      }) as TLSSocket["getPeerCertificate"];
    });
    server.on("request", (req, res) => {
      const before = reads;
      const admitted = credentials.admit(req);
      seen.push({ reads: reads - before, admitted, bound: boundUidOf(req).boundUid });
      res.end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const req = httpsRequest(
        `https://127.0.0.1:${port}/`,
        { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, agent: false },
        (res) => {
          res.resume();
          res.on("end", resolve);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.deepEqual(seen, [{ reads: 1, admitted: true, bound: "agent-1" }]);
  });

  test("tokens file rotation: a token added is accepted, one removed is refused (401) and its WebSocket sessions closed, no restart", async () => {
    const file = join(tempDir("opamp-gitops-tokens-"), "agents");
    writeFileSync(file, "old-token\n");
    const t = await startTestServer({ tokens: agentTokens("old-token\n", file, "x") });
    const log = capturedLogger();
    const reloader = new CredentialReloader(
      { opampTokensFile: file },
      {
        setAgentTokens: (tokens) => t.server.setTokens(tokens),
        setAdminTokens: () => {},
        setClientCa: () => {},
      },
      log.logger,
      { intervalMs: 50 },
    );
    reloader.start();
    const post = async (token: string) => (await postOpamp(t.url, body(), { token })).status;
    defer(async () => {
      reloader.close();
      await t.close();
    });
    assert.equal(await post("new-token"), 401);
    writeFileSync(file, "old-token\nnew-token groups=edge\n");
    await until("the new token is accepted", async () => (await post("new-token")) === 200);
    assert.equal(await upgradeStatus(t.url, "new-token"), 101);
    // Sessions of a removed token end (1008); those of a token kept as it was stay.
    const removed = new TestAgent({ transport: "websocket", url: t.url, token: "old-token" });
    const kept = new TestAgent({ transport: "websocket", url: t.url, token: "new-token" });
    for (const agent of [removed, kept]) {
      await agent.connect();
      assert.equal((await agent.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
    }
    const closes = new Map<TestAgent, string>();
    for (const agent of [removed, kept])
      agent.socket?.on("close", (code, reason) => closes.set(agent, `${code} ${reason}`));
    writeFileSync(file, "new-token groups=edge\n");
    await until("the old token is refused", async () => (await post("old-token")) === 401);
    assert.equal(await upgradeStatus(t.url, "old-token"), 401);
    assert.equal(
      await waitFor("the removed token's session is closed", () => closes.get(removed)),
      "1008 token removed or rescoped",
    );
    assert.ok(
      t.log.lines.some((l) => l.closed === 1 && /sessions of tokens removed/.test(String(l.msg))),
      "the closed sessions are logged",
    );
    assert.equal((await kept.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
    // The same token with another scope: its session ends too, and reconnects with the new one.
    assert.equal(closes.has(kept), false);
    writeFileSync(file, "new-token groups=prod\n");
    assert.equal(
      await waitFor("the rescoped token's session is closed", () => closes.get(kept)),
      "1008 token removed or rescoped",
    );
    // A broken file is logged; the tokens in use stay.
    writeFileSync(file, "new-token groups=\n");
    await until("the bad file is reported", async () =>
      log.lines.some((l) => /cannot reload credentials/.test(String(l.msg))),
    );
    assert.equal(await post("new-token"), 200);
    // reload() (SIGHUP) reads at once, without waiting for the poll.
    reloader.close();
    writeFileSync(file, "third-token\n");
    assert.equal(reloader.reload(), 1);
    assert.equal(await post("third-token"), 200);
    assert.equal(await post("new-token"), 401);
  });

  test("tokens file rotation: a change right after start() is seen; a file that goes away is reported, the tokens kept", async () => {
    const file = join(tempDir("opamp-gitops-tokens-"), "agents");
    writeFileSync(file, "old-token\n");
    const log = capturedLogger();
    const loaded: string[][] = [];
    const reloader = new CredentialReloader(
      { opampTokensFile: file },
      {
        setAgentTokens: (tokens) => loaded.push(tokens.map((t) => t.token)),
        setAdminTokens: () => {},
        setClientCa: () => {},
      },
      log.logger,
      { intervalMs: 50 },
    );
    reloader.start();
    defer(() => reloader.close());
    // Written in the same tick as start(): before any stat a poller takes later.
    writeFileSync(file, "old-token\nnew-token\n");
    await until("the change is loaded", async () => loaded.length > 0);
    assert.deepEqual(loaded, [["old-token", "new-token"]]);
    rmSync(file);
    await until("the missing file is reported", async () =>
      log.lines.some((l) => /cannot reload credentials/.test(String(l.msg))),
    );
    assert.equal(loaded.length, 1, "the tokens in use are kept");
    writeFileSync(file, "third-token\n");
    await until("the file back is loaded", async () => loaded.length === 2);
    assert.deepEqual(loaded[1], ["third-token"]);
  });

  test("client CA rotation: certificates of the new CA get in, those of the old one no longer, and their open sessions end", async () => {
    const oldCerts = makeTestCerts();
    const newCerts = makeTestCerts();
    const caFile = join(tempDir("opamp-gitops-ca-"), "ca.pem");
    writeFileSync(caFile, oldCerts.ca);
    const t = await startTestServer({
      tls: { cert: oldCerts.serverCert, key: oldCerts.serverKey, clientCa: oldCerts.ca },
    });
    const reloader = new CredentialReloader(
      { tlsClientCaFile: caFile },
      {
        setAgentTokens: () => {},
        setAdminTokens: () => {},
        setClientCa: (ca) => void t.server.setClientCa(ca),
      },
      capturedLogger().logger,
      { intervalMs: 50 },
    );
    reloader.start();
    const post = (client: { clientCert: Buffer; clientKey: Buffer }) =>
      new Promise<number>((resolve) => {
        const req = httpsRequest(
          t.url,
          {
            method: "POST",
            ca: oldCerts.ca,
            cert: client.clientCert,
            key: client.clientKey,
            agent: false,
            headers: { "Content-Type": "application/x-protobuf" },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", () => resolve(0)); // the handshake was refused
        req.end(body());
      });
    defer(async () => {
      reloader.close();
      await t.close();
    });
    const wss = (client: { clientCert: Buffer; clientKey: Buffer }) =>
      new TestAgent({
        transport: "websocket",
        url: t.url,
        tls: { ca: oldCerts.ca, cert: client.clientCert, key: client.clientKey },
      });
    assert.equal(await post(oldCerts), 200);
    assert.equal(await post(newCerts), 0);
    const before = wss(oldCerts);
    await before.connect();
    assert.equal((await before.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
    let closed = false;
    before.socket?.on("close", () => {
      closed = true;
    });
    writeFileSync(caFile, newCerts.ca);
    await until("the new CA is used", async () => (await post(newCerts)) === 200);
    assert.equal(await post(oldCerts), 0);
    await waitFor("the old CA's WSS session is closed", () => closed);
    const after = wss(newCerts);
    await after.connect();
    assert.equal((await after.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
    after.close();
  });
});
