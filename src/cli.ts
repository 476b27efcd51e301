#!/usr/bin/env node
/**
 * The opamp-gitops command line. Exit codes: 0 success, 1 runtime failure (e.g. Redis
 * unreachable), 2 usage or settings error.
 */
import { Command, CommanderError, Option } from "commander";
import { runSimulate, type SimulateOptions } from "./commands/simulate.js";
import { runValidate } from "./commands/validate.js";
import { createLogger } from "./logger.js";
import { OpampServer } from "./opamp/index.js";
import { connectRedis, RedisUnavailableError } from "./redis.js";
import { loadSettings, SettingsError, type SettingsFlags } from "./settings.js";

const program = new Command()
  .name("opamp-gitops")
  .description("Git as the source of truth for a fleet of OpenTelemetry agents, served over OpAMP")
  .exitOverride();

program
  .command("validate")
  .description("validate a working tree of the fleet repository, as a pull-request check does")
  .argument("[dir]", "folder holding fleet.yaml and groups/", ".")
  .addOption(
    new Option("--format <format>", "output format")
      .choices(["text", "json", "github"])
      .default("text"),
  )
  .option("--strict", "fail on warnings too", false)
  .addHelpText(
    "after",
    "\nExit codes: 0 valid, 1 errors (or warnings with --strict), 2 usage.\n" +
      "--format github prints workflow annotations (::error file=...,line=...::...).",
  )
  .action(async (dir: string, opts: { format: "text" | "json" | "github"; strict: boolean }) => {
    process.exitCode = await runValidate(dir, opts, process.stdout);
  });

program
  .command("serve")
  .description("run the OpAMP server (agents connect to /v1/opamp, state is kept in Redis)")
  .option(
    "--opamp-listen <host:port>",
    "OpAMP listen address (env OPAMP_GITOPS_OPAMP_LISTEN)",
    undefined,
  )
  .option("--redis <url>", "Redis URL (env OPAMP_GITOPS_REDIS; default redis://127.0.0.1:6379)")
  .option(
    "--redis-prefix <prefix>",
    "Redis key prefix (env OPAMP_GITOPS_REDIS_PREFIX; default opamp-gitops)",
  )
  .option(
    "--opamp-tokens-file <path>",
    "file of accepted agent bearer tokens, one per line (env OPAMP_GITOPS_OPAMP_TOKENS_FILE)",
  )
  .option(
    "--tls-cert <path>",
    "PEM certificate chain for the OpAMP port (env OPAMP_GITOPS_TLS_CERT)",
  )
  .option("--tls-key <path>", "PEM private key (env OPAMP_GITOPS_TLS_KEY)")
  .option("--tls-client-ca <path>", "require agent certificates signed by this CA (mTLS)")
  .option("--max-message-bytes <n>", "largest message after decompression (default 16777216)")
  .option("--max-connections <n>", "connections beyond which agents get 503 (default 50000)")
  .option("--log-level <level>", "trace|debug|info|warn|error (default info)")
  .action(async (flags: SettingsFlags) => {
    const settings = loadSettings(flags);
    const logger = createLogger(settings.logLevel);
    const redis = await connectRedis(settings.redisUrl);
    redis.on("error", (err) => logger.warn({ err }, "Redis connection error; reconnecting"));
    const server = new OpampServer({
      redis,
      logger,
      host: settings.opampHost,
      port: settings.opampPort,
      prefix: settings.redisPrefix,
      tokens: settings.opampTokens,
      maxMessageBytes: settings.maxMessageBytes,
      maxConnections: settings.maxConnections,
      ...(settings.tls ? { tls: settings.tls } : {}),
    });
    await server.start();
    const stop = async (signal: string) => {
      logger.info({ signal }, "shutting down");
      await server.close();
      redis.disconnect();
      process.exit(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });

program
  .command("simulate")
  .description("run simulated agents that behave like Collectors under the OpAMP supervisor")
  .requiredOption("--url <url>", "OpAMP endpoint, e.g. ws://127.0.0.1:4320/v1/opamp")
  .option("--agents <n>", "number of agents", "10")
  .addOption(
    new Option("--transport <transport>", "transport").choices(["ws", "http"]).default("ws"),
  )
  .option(
    "--attributes <k=v,...>",
    "agent attributes, e.g. deployment.environment=prod,host.role=edge",
  )
  .option("--fail-when <text>", "a config containing this text fails to apply (then rolls back)")
  .option("--apply-ms <ms>", "time an agent takes to apply a config", "200")
  .option("--token-file <path>", "bearer token for the OpAMP endpoint")
  .option("--duration <seconds>", "stop after this many seconds (default: until Ctrl-C)")
  .addOption(
    new Option("--format <format>", "summary format").choices(["text", "json"]).default("text"),
  )
  .action(async (opts: SimulateOptions) => {
    process.exitCode = await runSimulate(opts, process.stdout, process.stderr);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof SettingsError) {
    process.stderr.write(`opamp-gitops: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof RedisUnavailableError) {
    process.stderr.write(`opamp-gitops: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
