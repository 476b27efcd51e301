/**
 * Interop with a third-party OpAMP client: Elastic's @elastic/opamp-client-node (plain HTTP
 * transport, bufbuild protobuf), run against a real server on a free port with real Redis.
 *
 * What that client does, read from its source (lib/opamp-client.js, version 0.5.0):
 * - its first message has sequence_num 1 and the full state (description, capabilities,
 *   remote config status); ServerToAgent.flags ReportFullState makes it send the full state again;
 * - it polls every `heartbeatIntervalSeconds` (≥ 0.1 s) and sends queued changes ~30 ms after
 *   they are made (setAgentDescription, setRemoteConfigStatus);
 * - capabilities are limited to ReportsStatus | ReportsHeartbeat (always on) and
 *   AcceptsRemoteConfig | ReportsRemoteConfig; it never accepts connection settings, so it
 *   never learns a heartbeat interval from the server;
 * - it requires a 200 reply with Content-Type exactly application/x-protobuf and does not ask
 *   for gzip; any other answer puts it in a ≥ 30 s backoff;
 * - shutdown() only closes its HTTP client: it sends no agent_disconnect, so the server can
 *   only notice it left through the liveness window (livenessFactor × heartbeat interval).
 */
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { test } from "node:test";
import {
  createOpAMPClient,
  DIAG_CH_SEND_FAIL,
  DIAG_CH_SEND_SUCCESS,
  AgentCapabilities as ElasticCapabilities,
  RemoteConfigStatuses as ElasticRemoteConfigStatuses,
} from "@elastic/opamp-client-node";
import { agentAttributes } from "../../src/opamp/agent-state.js";
import {
  AgentCapabilities,
  RemoteConfigStatus,
  SERVER_CAPABILITIES,
  ServerToAgentFlags,
} from "../../src/opamp/capabilities.js";
import type { AgentEventMap } from "../../src/opamp/events.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const defer = deferred();

/** The parts of the client's bufbuild messages this test reads. */
interface ElasticConfigFile {
  body: Uint8Array;
  contentType: string;
}
interface ElasticRemoteConfig {
  config?: { configMap: Record<string, ElasticConfigFile> };
  configHash: Uint8Array;
}
interface ElasticExchange {
  instanceUidStr: string;
  a2s: {
    sequenceNum: bigint;
    capabilities: bigint;
    agentDescription?: unknown;
    remoteConfigStatus?: { status: number; lastRemoteConfigHash: Uint8Array };
    agentDisconnect?: unknown;
  };
  s2a?: { flags: bigint; capabilities: bigint; remoteConfig?: ElasticRemoteConfig };
  err?: unknown;
}

type ElasticClient = ReturnType<typeof createOpAMPClient>;

const HEARTBEAT_SECONDS = 0.2;

/** Every exchange the Elastic clients publish (diagEnabled), by instance uid string. */
class Exchanges {
  readonly ok: ElasticExchange[] = [];
  readonly failed: ElasticExchange[] = [];
  readonly #onOk = (m: unknown) => void this.ok.push(m as ElasticExchange);
  readonly #onFail = (m: unknown) => void this.failed.push(m as ElasticExchange);
  constructor() {
    subscribe(DIAG_CH_SEND_SUCCESS, this.#onOk);
    subscribe(DIAG_CH_SEND_FAIL, this.#onFail);
  }
  of(uid: string): { ok: ElasticExchange[]; failed: ElasticExchange[] } {
    return {
      ok: this.ok.filter((e) => e.instanceUidStr === uid),
      failed: this.failed.filter((e) => e.instanceUidStr === uid),
    };
  }
  close(): void {
    unsubscribe(DIAG_CH_SEND_SUCCESS, this.#onOk);
    unsubscribe(DIAG_CH_SEND_FAIL, this.#onFail);
  }
}

/** Records the server's agent events for one test. */
function recordEvents(t: TestServer) {
  const seen = {
    connected: [] as AgentEventMap["connected"][],
    disconnected: [] as AgentEventMap["disconnected"][],
    descriptionChanged: [] as AgentEventMap["descriptionChanged"][],
    remoteConfigStatusChanged: [] as AgentEventMap["remoteConfigStatusChanged"][],
  };
  const events = t.server.events;
  events.on("connected", (e) => seen.connected.push(e));
  events.on("disconnected", (e) => seen.disconnected.push(e));
  events.on("descriptionChanged", (e) => seen.descriptionChanged.push(e));
  events.on("remoteConfigStatusChanged", (e) => seen.remoteConfigStatusChanged.push(e));
  return seen;
}

/**
 * An Elastic client that applies every remote config it gets (reports APPLIED for its hash)
 * and keeps what it received.
 */
function elasticAgent(url: string, headers?: Record<string, string>) {
  const received: ElasticRemoteConfig[] = [];
  const client: ElasticClient = createOpAMPClient({
    endpoint: url,
    ...(headers ? { headers } : {}),
    capabilities: BigInt(
      Number(ElasticCapabilities.AgentCapabilities_AcceptsRemoteConfig) |
        Number(ElasticCapabilities.AgentCapabilities_ReportsRemoteConfig),
    ),
    heartbeatIntervalSeconds: HEARTBEAT_SECONDS,
    diagEnabled: true,
    onMessage: ({ remoteConfig }) => {
      if (!remoteConfig) return;
      const config = remoteConfig as unknown as ElasticRemoteConfig;
      received.push(config);
      client.setRemoteConfigStatus({
        lastRemoteConfigHash: config.configHash,
        status: Number(ElasticRemoteConfigStatuses.RemoteConfigStatuses_APPLIED),
      } as unknown as Parameters<ElasticClient["setRemoteConfigStatus"]>[0]);
    },
  });
  client.setAgentDescription({
    identifyingAttributes: { "service.name": "interop-elastic", "service.version": "1.2.3" },
    nonIdentifyingAttributes: { "os.type": "linux", "host.name": "interop-host" },
  });
  const uid = uidToString(client.getInstanceUid());
  return { client, received, uid };
}

const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString("hex");

const CONFIG_FILES = {
  "collector.yaml": [
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
  ].join("\n"),
  "extra.yaml": "processors:\n  batch: {}\n",
};

/**
 * The whole life of one Elastic client against `t`: connect, description, remote config,
 * APPLIED, shutdown, disconnect through the liveness window.
 */
async function runLifecycle(
  t: TestServer,
  exchanges: Exchanges,
  headers?: Record<string, string>,
): Promise<void> {
  const config = yamlConfig(CONFIG_FILES);
  assert.ok(config);
  t.desired.all = { config };
  const seen = recordEvents(t);
  const { client, received, uid } = elasticAgent(t.url, headers);
  const shutdown = start(client);

  // Connected, and its description stored and announced.
  await waitFor("descriptionChanged", () =>
    seen.descriptionChanged.find((e) => e.instanceUid === uid),
  );
  const described = seen.descriptionChanged.filter((e) => e.instanceUid === uid);
  assert.equal(described.length, 1, "the description is announced once");
  const attributes = agentAttributes({ description: described[0]?.description ?? null });
  assert.equal(attributes.get("service.name"), "interop-elastic");
  assert.equal(attributes.get("service.version"), "1.2.3");
  assert.equal(attributes.get("host.name"), "interop-host");
  assert.deepEqual(
    seen.connected.filter((e) => e.instanceUid === uid).map((e) => e.transport),
    ["http"],
  );

  // The remote config arrives with exactly our files and hash; the client reports APPLIED.
  await waitFor("remote config", () => received[0]);
  const got = received[0];
  const configMap = got?.config?.configMap;
  assert.ok(got && configMap);
  assert.equal(hex(got.configHash), config.hash);
  assert.deepEqual(Object.keys(configMap).sort(), Object.keys(CONFIG_FILES).sort());
  for (const [name, text] of Object.entries(CONFIG_FILES)) {
    const file: ElasticConfigFile | undefined = configMap[name];
    assert.equal(file?.contentType, "text/yaml", name);
    assert.equal(Buffer.from(file?.body ?? []).toString(), text, name);
  }
  const applied = await waitFor("APPLIED stored", async () => {
    const state = await t.server.store.load(uid);
    return state?.remoteConfigStatus?.status === RemoteConfigStatus.APPLIED ? state : undefined;
  });
  assert.equal(hex(applied.remoteConfigStatus?.lastRemoteConfigHash), config.hash);
  assert.equal(applied.transport, "http");
  assert.equal(applied.connected, true);
  assert.equal(
    applied.capabilities,
    AgentCapabilities.ReportsStatus |
      AgentCapabilities.AcceptsRemoteConfig |
      AgentCapabilities.ReportsRemoteConfig |
      AgentCapabilities.ReportsHeartbeat,
  );
  assert.equal(
    agentAttributes(applied).get("service.name"),
    "interop-elastic",
    "the description is in Redis",
  );
  const statuses = seen.remoteConfigStatusChanged.filter((e) => e.instanceUid === uid);
  assert.equal(statuses.at(-1)?.status.status, RemoteConfigStatus.APPLIED);

  // A few more polls: the config is never offered again, the agent stays connected.
  const polled = exchanges.of(uid).ok.length;
  await waitFor("three more polls", () =>
    exchanges.of(uid).ok.length >= polled + 3 ? true : undefined,
  );
  assert.equal(received.length, 1, "the remote config is offered once");
  const { ok, failed } = exchanges.of(uid);
  assert.deepEqual(failed, [], "no exchange failed");
  assert.equal(ok.filter((e) => e.s2a?.remoteConfig).length, 1);
  assert.ok(
    ok.every((e) => e.s2a?.capabilities === SERVER_CAPABILITIES),
    "every reply announces the server's capabilities",
  );
  // This client numbers from 1 and never repeats a number. The server may ask an agent it
  // has never seen for its full state (it does today, on the first reply), never again.
  assert.equal(ok[0]?.a2s.sequenceNum, 1n);
  assert.ok(ok[0]?.a2s.agentDescription, "the first message carries the description");
  const fullStateRequests = ok.filter((e) => e.s2a?.flags === ServerToAgentFlags.ReportFullState);
  assert.ok(fullStateRequests.length <= 1, "full state requested at most once");
  assert.ok(
    fullStateRequests.every((e) => e === ok[0]),
    "and only on first contact",
  );
  assert.ok(
    ok.every((e) => ((e.s2a?.flags ?? 0n) & ~ServerToAgentFlags.ReportFullState) === 0n),
    "no other flag",
  );
  assert.equal((await t.server.store.load(uid))?.connected, true);

  // Shutdown: the client sends no agent_disconnect; the liveness window notices it.
  const sentBefore = exchanges.of(uid).ok.length;
  await shutdown();
  assert.ok(
    exchanges.of(uid).ok.every((e) => e.a2s.agentDisconnect === undefined),
    "this client never sends agent_disconnect",
  );
  const gone = await waitFor("disconnected", () =>
    seen.disconnected.find((e) => e.instanceUid === uid),
  );
  assert.equal(gone.reason, "no poll within the liveness window");
  assert.equal(exchanges.of(uid).ok.length, sentBefore, "no poll after shutdown");
  const stored = await t.server.store.load(uid);
  assert.equal(stored?.connected, false);
  assert.ok(stored?.lastDisconnectedAt);
  assert.equal(t.server.connectedAgents, 0);
}

/**
 * Starts `client` and returns its shutdown, which runs at most once: where the test calls it,
 * or else after the test (a failed one), before the server closes.
 */
function start(client: ElasticClient): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  const shutdown = () => {
    stopped ??= client.shutdown();
    return stopped;
  };
  defer(shutdown);
  client.start();
  return shutdown;
}

/** Starts a test server that closes, with `exchanges`, after the test. */
async function server(exchanges: Exchanges, options: Parameters<typeof startTestServer>[0]) {
  const t = await startTestServer(options);
  defer(async () => {
    exchanges.close();
    await t.close();
  });
  return t;
}

/**
 * Liveness: an HTTP agent is disconnected after 3 × heartbeat without a poll. The server
 * assumes `defaultHeartbeatSeconds` for agents it offers no interval to; 1 s keeps the wait
 * after shutdown near 3 s, and the 0.2 s polls keep the agent well inside that window.
 */
const serverOptions = { defaultHeartbeatSeconds: 1, flushIntervalMs: 100 };

test("Elastic OpAMP client: description, remote config, APPLIED, liveness disconnect", async () => {
  const exchanges = new Exchanges();
  const t = await server(exchanges, serverOptions);
  await runLifecycle(t, exchanges);
});

test("Elastic OpAMP client with bearer auth: refused without the token, served with it", async () => {
  const exchanges = new Exchanges();
  const t = await server(exchanges, { ...serverOptions, tokens: ["s3cret"] });
  // Without the token: HTTP 401, which this client treats as a failed send (then backs off).
  const anonymous = elasticAgent(t.url);
  const stopAnonymous = start(anonymous.client);
  const refused = await waitFor("refusal", () => exchanges.of(anonymous.uid).failed[0]);
  assert.match(String(refused.err), /statusCode=401/);
  assert.equal(exchanges.of(anonymous.uid).ok.length, 0);
  assert.equal(await t.server.store.load(anonymous.uid), undefined, "nothing stored");
  await stopAnonymous();
  // A wrong token is refused the same way.
  const wrong = elasticAgent(t.url, { Authorization: "Bearer nope" });
  const stopWrong = start(wrong.client);
  const wrongRefused = await waitFor("refusal", () => exchanges.of(wrong.uid).failed[0]);
  assert.match(String(wrongRefused.err), /statusCode=401/);
  await stopWrong();
  // With it: the whole lifecycle.
  await runLifecycle(t, exchanges, { Authorization: "Bearer s3cret" });
});
