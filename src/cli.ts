#!/usr/bin/env node
/**
 * The opamp-gitops command line. Exit codes: 0 success, 1 runtime failure (e.g. Redis
 * unreachable), 2 usage or settings error.
 */
import { Command, CommanderError, Option } from "commander";
import { runSimulate, type SimulateOptions } from "./commands/simulate.js";
import { runValidate } from "./commands/validate.js";
import { createLogger } from "./logger.js";
import { connectRedis, RedisUnavailableError } from "./redis.js";
import { Service } from "./service/service.js";
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
  .description("serve the fleet: read Git, validate, roll out over OpAMP, track what agents report")
  .option(
    "--repo <path|url>",
    "fleet repository: a local path or an http(s) URL (env OPAMP_GITOPS_REPO)",
  )
  .option("--branch <name>", "branch to serve (default main)")
  .option("--path <dir>", "sub-folder of the repository holding fleet.yaml and groups/")
  .option("--state-dir <dir>", "where clones and local state live (default .opamp-gitops)")
  .option("--poll-interval <duration>", "how often Git is checked (default 15s)")
  .option("--git-token-file <path>", "token for an http(s) repository, read from a file")
  .option("--git-token-env <name>", "name of an environment variable holding that token")
  .option("--opamp-listen <host:port>", "OpAMP listen address (default 0.0.0.0:4320)")
  .option(
    "--api-listen <host:port>",
    "admin API, metrics and webhook address (default 127.0.0.1:4321)",
  )
  .option("--api-tokens-file <path>", "bearer tokens accepted by the admin API, one per line")
  .option(
    "--webhook-secret-file <path>",
    "shared secret of POST /hooks/git (HMAC-SHA256 or GitLab token)",
  )
  .option("--redis <url>", "Redis URL (default redis://127.0.0.1:6379)")
  .option("--redis-prefix <prefix>", "Redis key prefix (default opamp-gitops)")
  .option("--opamp-tokens-file <path>", "bearer tokens accepted from agents, one per line")
  .option("--tls-cert <path>", "PEM certificate chain for the OpAMP port")
  .option("--tls-key <path>", "PEM private key")
  .option("--tls-client-ca <path>", "require agent certificates signed by this CA (mTLS)")
  .option("--max-message-bytes <n>", "largest message after decompression (default 16777216)")
  .option("--max-connections <n>", "connections beyond which agents get 503 (default 50000)")
  .option(
    "--status-branch <name>",
    "branch the agents' reported state is committed to (default opamp-status)",
  )
  .option("--status-interval <duration>", "how often reported state is committed (default 10s)")
  .option(
    "--status-mode <mode>",
    "branch: an orphan status branch (default); folder: status/ on the config branch",
  )
  .option(
    "--status-retention <duration>",
    "agents offline longer than this leave the status branch (default 168h)",
  )
  .option("--log-level <level>", "trace|debug|info|warn|error (default info)")
  .addHelpText(
    "after",
    "\nEvery flag can also be set as OPAMP_GITOPS_<FLAG> (e.g. OPAMP_GITOPS_REPO).\n" +
      "Exit codes: 0 stopped cleanly, 1 runtime failure (Redis or Git unreachable), 2 bad settings.",
  )
  .action(async (flags: SettingsFlags) => {
    const settings = loadSettings(flags);
    const logger = createLogger(settings.logLevel);
    const redis = await connectRedis(settings.redisUrl);
    redis.on("error", (err) => logger.warn({ err }, "Redis connection error; reconnecting"));
    const service = new Service({ settings, redis, logger });
    await service.start();
    const stop = async (signal: string) => {
      logger.info({ signal }, "shutting down");
      const force = setTimeout(() => process.exit(1), 15_000);
      await service.close();
      redis.disconnect();
      clearTimeout(force);
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
