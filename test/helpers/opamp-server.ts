/** Starts a real OpAMP server on a free port with real Redis, for one test. */

import { type ConfigFile, configHash } from "../../src/config-hash.js";
import type { AgentState } from "../../src/opamp/agent-state.js";
import type { DesiredState, DesiredStateProvider } from "../../src/opamp/desired.js";
import { ReplicaLiveness } from "../../src/opamp/replica-liveness.js";
import { OpampServer, type OpampServerOptions } from "../../src/opamp/server.js";
import { type CapturedLogger, capturedLogger } from "./logger.js";
import { type TestRedis, testRedis } from "./redis.js";

/** A provider tests can change: one desired state for every agent, or per uid. */
export class TestDesired implements DesiredStateProvider {
  all: DesiredState | undefined;
  readonly byUid = new Map<string, DesiredState>();
  desired(agent: Readonly<AgentState>): DesiredState | undefined {
    return this.byUid.get(agent.instanceUid) ?? this.all;
  }
}

/** A desired config from file name → YAML text. */
export function yamlConfig(files: Record<string, string>): DesiredState["config"] {
  const list: ConfigFile[] = Object.entries(files).map(([name, text]) => ({
    name,
    contentType: "text/yaml",
    body: Buffer.from(text),
  }));
  return { hash: configHash(list), files: list };
}

export interface TestServer {
  server: OpampServer;
  url: string;
  desired: TestDesired;
  redis: TestRedis;
  log: CapturedLogger;
  close(): Promise<void>;
}

export async function startTestServer(
  options: Partial<OpampServerOptions> = {},
): Promise<TestServer> {
  const redis = await testRedis();
  const log = capturedLogger();
  const desired = new TestDesired();
  const server = new OpampServer({
    redis: redis.redis,
    prefix: redis.prefix,
    logger: log.logger,
    host: "127.0.0.1",
    port: 0,
    desired,
    ...options,
  });
  const { port } = await server.start();
  const scheme = options.tls ? "https" : "http";
  return {
    server,
    url: `${scheme}://127.0.0.1:${port}/v1/opamp`,
    desired,
    redis,
    log,
    async close() {
      await server.close();
      await redis.close();
    },
  };
}

export interface TestReplica {
  id: string;
  server: OpampServer;
  /** Not started: the test ticks, sweeps or starts it when it needs to. */
  liveness: ReplicaLiveness;
  /** http(s)://127.0.0.1:<port>/v1/opamp */
  url: string;
}

/**
 * One replica of the OpAMP side on `redis`'s prefix: a started server (port 0, replica `id`,
 * `options` over the defaults) and its process-liveness key, whose expiry is `timeoutMs`
 * (default 60 000). The caller closes the server; the prefix is the caller's to delete.
 */
export async function startReplica(
  redis: TestRedis,
  id: string,
  { timeoutMs = 60_000, ...options }: Partial<OpampServerOptions> & { timeoutMs?: number } = {},
): Promise<TestReplica> {
  const { logger } = capturedLogger("warn");
  const server = new OpampServer({
    redis: redis.redis,
    prefix: redis.prefix,
    logger,
    host: "127.0.0.1",
    port: 0,
    replicaId: id,
    ...options,
  });
  const liveness = new ReplicaLiveness({
    redis: redis.redis,
    prefix: redis.prefix,
    replicaId: id,
    events: server.events,
    store: server.store,
    live: server.handler.live,
    logger,
    timeoutMs,
  });
  const { port } = await server.start();
  const scheme = options.tls ? "https" : "http";
  return { id, server, liveness, url: `${scheme}://127.0.0.1:${port}/v1/opamp` };
}
