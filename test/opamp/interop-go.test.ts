/**
 * Interop with the reference OpAMP client: opamp-go's client package
 * (github.com/open-telemetry/opamp-go/client), driven by our own small Go program in
 * test/interop/go, over both of its transports (client.NewWebSocket, client.NewHTTP), against
 * a real server on a free port with real Redis. Skipped when no Go toolchain is installed; the
 * first build downloads the Go modules, later builds come from Go's caches.
 *
 * What that client does, read from its source (client/ and client/internal/, v0.23.0):
 * - its first message has sequence_num 0 and the full state it holds: description,
 *   capabilities, health (set before Start), effective config, remote config status;
 *   ServerToAgent.flags ReportFullState makes it send all of it again;
 * - after a WebSocket reconnect it sends only the next, usually empty, message (the sequence
 *   number continues), so a server that lost the agent must ask for the full state;
 * - WebSocket frames start with the 0x00 header; with compression it offers
 *   permessage-deflate, which this server declines. Plain HTTP posts application/x-protobuf
 *   with an OpAMP-Instance-UID header, gzip bodies with compression, and Go's transport always
 *   asks for (and inflates) gzip replies;
 * - SetRemoteConfigStatus and UpdateEffectiveConfig only schedule a send; changes made before
 *   the send are merged into one message. An HTTP client polls at its heartbeat interval;
 * - the WebSocket client's Stop() sends agent_disconnect and closes the socket; the HTTP
 *   client's Stop() sends nothing;
 * - a refused WebSocket upgrade (401) is reported through OnConnectFailed and retried with
 *   backoff; a refused HTTP request (401) is only logged, not retried, and its message lost.
 *
 * The program prints one JSON line per event: start (with its instance uid), connected,
 * remote_config (hash and files), applying, applied, done, timeout, stopped; it exits 0 once
 * it applied -configs distinct configs and reported each APPLIED, 1 on timeout.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { agentAttributes } from "../../src/opamp/agent-state.js";
import { AgentCapabilities, RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import type { DesiredConfig } from "../../src/opamp/desired.js";
import type { AgentEventMap } from "../../src/opamp/events.js";
import { isCanonicalUid } from "../../src/opamp/instance-uid.js";
import { OpampServer } from "../../src/opamp/server.js";
import {
  buildGoProgram,
  findGo,
  type GoEvent,
  type GoRun,
  runGoProgram,
} from "../helpers/go-program.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { waitFor } from "../helpers/wait.js";

const COLLECTOR_YAML = [
  "receivers:",
  "  otlp:",
  "    protocols:",
  "      grpc: {}",
  "exporters:",
  "  debug: {}",
  "service:",
  "  pipelines:",
  "    traces:",
  "      receivers: [otlp]",
  "      exporters: [debug]",
  "",
].join("\n");

/** The capability word the program announces. */
const GO_CAPABILITIES =
  AgentCapabilities.ReportsStatus |
  AgentCapabilities.AcceptsRemoteConfig |
  AgentCapabilities.ReportsEffectiveConfig |
  AgentCapabilities.ReportsRemoteConfig |
  AgentCapabilities.ReportsHealth |
  AgentCapabilities.ReportsHeartbeat;

type Transport = "ws" | "http";

/** Records the agent events of interest of one or more servers, for a test to wait on. */
class EventLog {
  readonly statuses: AgentEventMap["remoteConfigStatusChanged"][] = [];
  readonly disconnects: AgentEventMap["disconnected"][] = [];
  readonly #off: Array<() => void> = [];
  constructor(server: OpampServer) {
    this.attach(server);
  }
  attach(server: OpampServer): void {
    this.#off.push(
      server.events.on("remoteConfigStatusChanged", (e) => void this.statuses.push(e)),
      server.events.on("disconnected", (e) => void this.disconnects.push(e)),
    );
  }
  /** Polls `find` until it returns something, or fails after `ms`. */
  async until<T>(what: string, find: () => T | undefined, ms = 10_000): Promise<T> {
    return (await waitFor(what, find, { timeoutMs: ms, intervalMs: 20 })) as T;
  }
  close(): void {
    for (const off of this.#off) off();
  }
}

const hex = (bytes: Uint8Array | undefined | null) => Buffer.from(bytes ?? []).toString("hex");

function eventsNamed(result: GoRun, name: string): GoEvent[] {
  return result.events.filter((e) => e.event === name);
}

function startUid(result: GoRun): string {
  const start = result.events[0];
  assert.equal(start?.event, "start", `first line must be the start event: ${show(result)}`);
  const uid = start.instanceUid;
  assert.ok(typeof uid === "string" && isCanonicalUid(uid), `bad instance uid ${String(uid)}`);
  // UUIDv7, as the specification recommends.
  assert.equal(uid[14], "7", `instance uid ${uid} is not a UUIDv7`);
  return uid;
}

function show(result: GoRun): string {
  return `exit ${result.code}\nstdout:\n${result.events.map((e) => JSON.stringify(e)).join("\n")}\nstderr:\n${result.stderr}`;
}

/** File name → text of a desired config, as the program prints it. */
function textFiles(config: DesiredConfig): Record<string, string> {
  return Object.fromEntries(config.files.map((f) => [f.name, Buffer.from(f.body).toString()]));
}

interface RunOptions {
  transport: Transport;
  token?: string;
  /** Heartbeat (and HTTP polling) interval, a Go duration; default the library's 30 s. */
  heartbeat?: string;
  compress?: boolean;
  /** Connection failures are expected (the server restarts during the run). */
  reconnects?: boolean;
}

test("opamp-go client interop", { timeout: 420_000 }, async (t) => {
  const found = findGo();
  if (!("go" in found)) {
    t.skip(`go not found: ${found.reason}`);
    return;
  }
  const workDir = mkdtempSync(join(tmpdir(), "opamp-interop-go-"));
  t.after(() => rmSync(workDir, { recursive: true, force: true }));
  const bin = join(workDir, "interop");

  const buildStarted = Date.now();
  await buildGoProgram(found.go, bin);
  t.diagnostic(`go build took ${Date.now() - buildStarted} ms (${found.go})`);

  const first = yamlConfig({ "collector.yaml": COLLECTOR_YAML });
  const second = yamlConfig({
    "collector.yaml": COLLECTOR_YAML.replace("debug: {}", "debug: { verbosity: detailed }"),
    "extra.yaml": "extensions:\n  health_check: {}\n",
  });
  assert.ok(first && second);

  /**
   * Runs the program against `srv` until it applied `configs` (in that order) and checks the
   * whole exchange on both sides: the files it received, the APPLYING → APPLIED statuses
   * of each, and the description, health, capabilities and effective config stored.
   */
  async function exchange(
    srv: TestServer,
    run: RunOptions,
    configs: readonly DesiredConfig[],
    log = new EventLog(srv.server),
  ): Promise<{ uid: string; result: GoRun }> {
    // try/finally, not defer: the log belongs to this call; several run in one subtest.
    try {
      return await runAndCheck(srv, run, configs, log);
    } finally {
      log.close();
    }
  }

  async function runAndCheck(
    srv: TestServer,
    run: RunOptions,
    configs: readonly DesiredConfig[],
    log: EventLog,
  ): Promise<{ uid: string; result: GoRun }> {
    const args = ["-url", srv.url, "-transport", run.transport, "-timeout", "15s"];
    args.push("-configs", String(configs.length));
    if (run.token) args.push("-token", run.token);
    if (run.heartbeat) args.push("-heartbeat", run.heartbeat);
    if (run.compress) args.push("-compress");
    const result = await runGoProgram(bin, args, 30_000);
    const uid = startUid(result);
    assert.equal(result.code, 0, show(result));

    // The agent side: it connected and got exactly the files we serve, under our hashes.
    assert.equal(eventsNamed(result, "connected").length, 1, show(result));
    assert.deepEqual(
      eventsNamed(result, "remote_config").map((e) => ({ hash: e.hash, files: e.files })),
      configs.map((c) => ({ hash: c.hash, files: textFiles(c) })),
      `each config offered once, in order: ${show(result)}`,
    );
    assert.deepEqual(
      eventsNamed(result, "done")[0]?.hashes,
      configs.map((c) => c.hash),
    );
    assert.deepEqual(eventsNamed(result, "server_error"), [], show(result));
    if (!run.reconnects) assert.deepEqual(eventsNamed(result, "connect_failed"), [], show(result));

    // The server side: for each config APPLYING, then APPLIED, each an event.
    const last = configs.at(-1) as DesiredConfig;
    const appliedLast = `${RemoteConfigStatus.APPLIED}:${last.hash}`;
    const seen = await log.until("APPLIED for the last config", () => {
      const list = log.statuses
        .filter((e) => e.instanceUid === uid)
        .map((e) => `${e.status.status ?? 0}:${hex(e.status.lastRemoteConfigHash)}`);
      return list.includes(appliedLast) ? list : undefined;
    });
    let at = -1;
    for (const config of configs) {
      for (const status of [RemoteConfigStatus.APPLYING, RemoteConfigStatus.APPLIED]) {
        const next = seen.indexOf(`${status}:${config.hash}`, at + 1);
        assert.ok(next > at, `status ${status} for ${config.hash} in order: ${seen.join(", ")}`);
        at = next;
      }
    }

    // What the server stored in Redis.
    const state = await srv.server.store.load(uid);
    assert.ok(state, `agent ${uid} not stored`);
    assert.equal(state.transport, run.transport === "ws" ? "websocket" : "http");
    assert.equal(state.capabilities, GO_CAPABILITIES);
    assert.equal(state.remoteConfigStatus?.status, RemoteConfigStatus.APPLIED);
    assert.equal(hex(state.remoteConfigStatus?.lastRemoteConfigHash), last.hash);
    const attributes = agentAttributes(state);
    assert.equal(attributes.get("service.name"), "interop-go");
    assert.equal(attributes.get("service.instance.id"), uid);
    assert.ok(attributes.get("host.name"), "host.name reported");
    assert.equal(state.health?.healthy, true);
    const effective = state.effectiveConfig?.configMap?.configMap ?? {};
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(effective).map(([name, f]) => [
          name,
          { contentType: f.contentType, text: Buffer.from(f.body ?? []).toString() },
        ]),
      ),
      Object.fromEntries(
        last.files.map((f) => [
          f.name,
          { contentType: f.contentType, text: Buffer.from(f.body).toString() },
        ]),
      ),
      "the effective config reported is the config served",
    );
    assert.ok(state.sequenceNum > 0n, `sequence number ${state.sequenceNum}`);

    if (run.transport === "ws") {
      // Stop() of the WebSocket client says goodbye with agent_disconnect.
      const bye = await log.until("agent_disconnect", () =>
        log.disconnects.find((e) => e.instanceUid === uid && e.reason === "agent_disconnect"),
      );
      assert.equal(bye.agent.connected, false);
      assert.equal((await srv.server.store.load(uid))?.connected, false);
    }
    return { uid, result };
  }

  /** Serves `next` once an agent reported `current` APPLIED; returns how many were pushed. */
  function switchAfterApplied(srv: TestServer, current: DesiredConfig, next: DesiredConfig) {
    const pushed: number[] = [];
    srv.server.events.on("remoteConfigStatusChanged", (e) => {
      if (e.status.status !== RemoteConfigStatus.APPLIED) return;
      if (hex(e.status.lastRemoteConfigHash) !== current.hash) return;
      srv.desired.all = { config: next };
      void srv.server.refresh().then((n) => pushed.push(n));
    });
    return pushed;
  }

  async function withServer(
    options: Parameters<typeof startTestServer>[0],
    body: (srv: TestServer) => Promise<void>,
  ): Promise<void> {
    const srv = await startTestServer(options);
    // try/finally, not defer: the server belongs to this call, and closes before the next
    // subtest (sharing the parent test) starts its own.
    try {
      await body(srv);
    } finally {
      await srv.close();
    }
  }

  for (const transport of ["ws", "http"] as const) {
    await t.test(`${transport}: connects, reports, applies the remote config`, () =>
      withServer({}, async (srv) => {
        srv.desired.all = { config: first };
        const started = Date.now();
        await exchange(srv, { transport }, [first]);
        t.diagnostic(`${transport} exchange took ${Date.now() - started} ms`);
      }),
    );
  }

  await t.test("ws: a config changed while connected is pushed at once", () =>
    withServer({}, async (srv) => {
      srv.desired.all = { config: first };
      const pushed = switchAfterApplied(srv, first, second);
      // Heartbeats every 30 s (the default) and a 15 s limit: only a push can deliver it.
      await exchange(srv, { transport: "ws" }, [first, second]);
      assert.deepEqual(pushed, [1]);
    }),
  );

  await t.test("http, gzip bodies: a changed config is served on the next poll", () =>
    withServer({}, async (srv) => {
      srv.desired.all = { config: first };
      const pushed = switchAfterApplied(srv, first, second);
      await exchange(srv, { transport: "http", heartbeat: "1s", compress: true }, [first, second]);
      assert.deepEqual(pushed, [0], "HTTP agents cannot be pushed to");
    }),
  );

  await t.test("ws: after a server restart the agent reconnects and is known from Redis", () =>
    withServer({}, async (srv) => {
      srv.desired.all = { config: first };
      const log = new EventLog(srv.server);
      const port = Number(new URL(srv.url).port);
      let restarted: Promise<OpampServer> | undefined;
      srv.server.events.on("remoteConfigStatusChanged", (e) => {
        if (e.status.status !== RemoteConfigStatus.APPLIED || restarted) return;
        restarted = (async () => {
          await srv.server.close();
          srv.desired.all = { config: second };
          const next = new OpampServer({
            redis: srv.redis.redis,
            prefix: srv.redis.prefix,
            logger: srv.log.logger,
            host: "127.0.0.1",
            port,
            desired: srv.desired,
          });
          log.attach(next);
          await next.start();
          return next;
        })();
      });
      // try/finally: the restarted server closes before withServer closes the first one.
      try {
        await exchange(srv, { transport: "ws", reconnects: true }, [first, second], log);
      } finally {
        await (await restarted)?.close();
      }
    }),
  );

  await t.test("bearer tokens: the right one is accepted, a wrong one refused", () =>
    withServer({ tokens: ["s3cret"] }, async (srv) => {
      srv.desired.all = { config: first };
      const good = await Promise.all([
        exchange(srv, { transport: "ws", token: "s3cret" }, [first]),
        exchange(srv, { transport: "http", token: "s3cret" }, [first]),
      ]);
      const refused = await Promise.all(
        (["ws", "http"] as const).map((transport) =>
          runGoProgram(
            bin,
            ["-url", srv.url, "-transport", transport, "-timeout", "5s", "-token", "wrong"],
            20_000,
          ),
        ),
      );
      for (const result of refused) {
        const uid = startUid(result);
        assert.equal(result.code, 1, show(result));
        assert.equal(eventsNamed(result, "timeout").length, 1, show(result));
        assert.deepEqual(eventsNamed(result, "connected"), [], show(result));
        assert.deepEqual(eventsNamed(result, "remote_config"), [], show(result));
        assert.match(result.stderr, /401/, show(result));
        assert.equal(await srv.server.store.load(uid), undefined, "a refused agent is not stored");
      }
      // The WebSocket client reports the refused upgrade and keeps retrying.
      const ws = refused[0];
      assert.ok(ws && eventsNamed(ws, "connect_failed").length >= 1, ws && show(ws));
      assert.deepEqual(
        (await srv.server.store.list()).sort(),
        good.map((g) => g.uid).sort(),
        "only the agents with the right token are known",
      );
    }),
  );
});
