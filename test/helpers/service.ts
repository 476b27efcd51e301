/**
 * The whole service (Git sync, rollouts, OpAMP server, admin API, status writer) in the test's
 * process, on real Redis and a local repository: what the e2e and interop tests run against
 * when they need to reach into it (`service.rollouts`, `service.sync`) rather than run `serve`.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { connectRedis } from "../../src/redis.js";
import { Service } from "../../src/service/service.js";
import { loadSettings, type Settings, type SettingsFlags } from "../../src/settings.js";
import { tempDir } from "../sync/helpers/git-repo.js";
import { capturedLogger } from "./logger.js";
import { freePort } from "./ports.js";
import { type TestRedis, testRedis } from "./redis.js";

export interface TestServiceOptions {
  /** Default: a captured logger at "warn" that nobody reads (pass one to read its lines). */
  logger?: Logger;
  /**
   * The Redis prefix to run under. Default: a new one, deleted by `close()`. Replicas share
   * one by passing it; then the caller closes it, after every replica.
   */
  redis?: TestRedis;
  /**
   * Listen on a port picked beforehand and advertise ws://127.0.0.1:<port>/v1/opamp (what
   * the service needs to offer the package files it serves). Default false: port 0.
   */
  advertise?: boolean;
  /**
   * Package files by name (e.g. "plugin-v1.bin"), written to a temp folder passed as
   * --package-dir. The service serves them only with `advertise`.
   */
  packages?: Record<string, Buffer>;
  /** The agent tokens file's text (one `token [groups=…]` a line): written, and passed as
   * --opamp-tokens-file. */
  agentTokens?: string;
  /** Changes the loaded settings before the service is built (values no flag sets). */
  adjust?: (settings: Settings) => void;
}

export interface TestService {
  service: Service;
  settings: Settings;
  /** The test's Redis (its prefix is the service's). */
  redis: TestRedis;
  /** The service's own connection. */
  serviceRedis: Redis;
  opampPort: number;
  apiPort: number;
  /** http://127.0.0.1:<opampPort>/v1/opamp (TestAgent derives ws:// itself). */
  url: string;
  /** ws://127.0.0.1:<opampPort>/v1/opamp */
  wsUrl: string;
  /** http://127.0.0.1:<apiPort>, the admin API's base. */
  api: string;
  /** Closes the service and its connection, then deletes the Redis keys if it made them. */
  close(): Promise<void>;
}

/**
 * Starts the service with `flags` over the tests' defaults: a fresh state dir, both listeners
 * on 127.0.0.1 (port 0), Git polled and the status branch flushed every 200 ms, this test's
 * Redis prefix. The process environment is not read (loadSettings gets `{}`).
 */
export async function startTestService(
  flags: SettingsFlags = {},
  options: TestServiceOptions = {},
): Promise<TestService> {
  const redis = options.redis ?? (await testRedis());
  const fixed = options.advertise ? await freePort() : 0;
  let packageDir: string | undefined;
  if (options.packages) {
    packageDir = tempDir("opamp-gitops-packages-");
    for (const [name, bytes] of Object.entries(options.packages))
      writeFileSync(join(packageDir, name), bytes);
  }
  let tokensFile: string | undefined;
  if (options.agentTokens !== undefined) {
    tokensFile = join(tempDir("opamp-gitops-tokens-"), "agents");
    writeFileSync(tokensFile, options.agentTokens);
  }
  const settings = loadSettings(
    {
      stateDir: tempDir("opamp-gitops-service-"),
      pollInterval: "200ms",
      statusInterval: "200ms",
      opampListen: `127.0.0.1:${fixed}`,
      apiListen: "127.0.0.1:0",
      ...(options.advertise ? { advertiseUrl: `ws://127.0.0.1:${fixed}/v1/opamp` } : {}),
      ...(tokensFile ? { opampTokensFile: tokensFile } : {}),
      ...(packageDir ? { packageDir } : {}),
      redisPrefix: redis.prefix,
      ...flags,
    },
    {},
  );
  options.adjust?.(settings);
  const serviceRedis = await connectRedis(settings.redisUrl);
  const logger = options.logger ?? capturedLogger("warn").logger;
  const service = new Service({ settings, redis: serviceRedis, logger });
  let ports: { opampPort: number; apiPort: number };
  try {
    ports = await service.start();
  } catch (err) {
    // The caller gets no handle to close: what was opened is closed here.
    await service.close().catch(() => undefined);
    serviceRedis.disconnect();
    if (!options.redis) await redis.close();
    throw err;
  }
  const { opampPort, apiPort } = ports;
  return {
    service,
    settings,
    redis,
    serviceRedis,
    opampPort,
    apiPort,
    url: `http://127.0.0.1:${opampPort}/v1/opamp`,
    wsUrl: `ws://127.0.0.1:${opampPort}/v1/opamp`,
    api: `http://127.0.0.1:${apiPort}`,
    async close() {
      await service.close();
      serviceRedis.disconnect();
      if (!options.redis) await redis.close();
    },
  };
}
