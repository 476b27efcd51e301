#!/usr/bin/env node
/**
 * The opamp-gitops command line. Exit codes: 0 success, 1 runtime failure (e.g. Redis
 * unreachable) or refused action, 2 usage or settings error, 3 (client commands) the
 * service cannot be reached.
 */
import { Argument, Command, CommanderError, Option } from "commander";
// Each command's module is imported when that command runs: `plan` and `validate` in a CI
// job must not pay for loading the service (BullMQ, ioredis, ws, protobufjs, the redactor).
import type { DemoOptions } from "./commands/demo.js";
import type { PlanOptions } from "./commands/plan.js";
import { PLAN_FORMATS } from "./commands/plan-model.js";
import type { ClientOptions } from "./commands/rollout.js";
import { ROLLOUT_ACTIONS, type RolloutAction } from "./commands/rollout-actions.js";
import type { SimulateOptions } from "./commands/simulate.js";
import { SettingsError, type SettingsFlags } from "./settings.js";

const SECRET_SETTINGS_HELP =
  "serve's settings file: its secretDir, secretEnvPrefix and gitTokenEnv apply (env OPAMP_GITOPS_SETTINGS)";
const SECRET_POLICY_HELP =
  "Secret references are judged as serve resolves them: --secret-dir and --secret-env-prefix,\n" +
  "else OPAMP_GITOPS_SECRET_DIR / OPAMP_GITOPS_SECRET_ENV_PREFIX, else the --settings file.";

/** The secret-reference policy options of `validate` and `plan`: serve's, read the same way. */
const secretPolicyOptions = (cmd: Command) =>
  cmd
    .option(
      "--secret-dir <folder>",
      "the service's --secret-dir: file references outside it are errors (default: none, all are)",
    )
    .option(
      "--secret-env-prefix <prefix>",
      "the service's --secret-env-prefix: references to other variables are errors (default OPAMP_GITOPS_SECRET_)",
    )
    .option("--settings <file>", SECRET_SETTINGS_HELP);

const program = new Command()
  .name("opamp-gitops")
  .description("Git as the source of truth for a fleet of OpenTelemetry agents, served over OpAMP")
  .exitOverride()
  .addHelpText(
    "after",
    "\nStart with `opamp-gitops demo` (npm start). Exit codes: 0 success, 1 runtime failure or an\n" +
      "action the service refused, 2 usage or settings error, 3 the service cannot be reached\n" +
      "(rollout, agents). Each command's --help says more.",
  );

secretPolicyOptions(program.command("validate"))
  .description("validate a working tree of the fleet repository, as a pull-request check does")
  .argument("[dir]", "folder holding fleet.yaml and groups/", ".")
  .addOption(
    new Option("--format <format>", "output format")
      .choices(["text", "json", "github"])
      .default("text"),
  )
  .option("--strict", "fail on warnings too", false)
  .option(
    "--otelcol <[name=]path>",
    "also check each group with this Collector binary's own `validate` (repeatable; name= for config.distribution)",
    (v: string, all: string[]) => [...all, v],
    [] as string[],
  )
  .addHelpText(
    "after",
    `\n${SECRET_POLICY_HELP}\n` +
      "Exit codes: 0 valid, 1 errors (or warnings with --strict), 2 usage.\n" +
      "--format github prints workflow annotations (::error file=...,line=...::...).",
  )
  .action(
    async (
      dir: string,
      opts: {
        format: "text" | "json" | "github";
        strict: boolean;
        otelcol: string[];
        secretDir?: string;
        secretEnvPrefix?: string;
        settings?: string;
      },
    ) => {
      const { runValidate } = await import("./commands/validate.js");
      process.exitCode = await runValidate(dir, opts, process.stdout);
    },
  );

secretPolicyOptions(program.command("plan"))
  .description("preview what merging a change does to the fleet: findings, diffs, agents, rollouts")
  .requiredOption("--base <ref>", "the commit the change starts from (e.g. origin/main)")
  .requiredOption("--head <ref>", "the commit of the change (e.g. HEAD)")
  .option("--repo <dir>", "the fleet repository (work tree or bare)", ".")
  .option("--path <dir>", "sub-folder of the repository holding fleet.yaml and groups/")
  .option("--api-url <url>", "count agents from a running service (env OPAMP_GITOPS_API_URL)")
  .option("--api-token-file <path>", "bearer token for --api-url (env OPAMP_GITOPS_API_TOKEN_FILE)")
  .option(
    "--status-ref <ref>",
    "without --api-url: the status branch to count agents from",
    "opamp-status",
  )
  .option(
    "--otelcol <[name=]path>",
    "also check the changed groups with this Collector binary (repeatable; name= for config.distribution)",
    (v: string, all: string[]) => [...all, v],
    [] as string[],
  )
  .addOption(
    new Option("--format <format>", "output format").choices([...PLAN_FORMATS]).default("text"),
  )
  .addHelpText(
    "after",
    `\n${SECRET_POLICY_HELP}\n` +
      "Reads Git objects only (no checkout). Exit codes: 0 the head is valid, 1 it is not,\n" +
      "2 usage (unknown ref, not a repository), 3 --api-url cannot be reached.\n" +
      "--format markdown is a pull-request comment; github prints workflow annotations and\n" +
      "appends the comment to $GITHUB_STEP_SUMMARY.",
  )
  .action(async (opts: PlanOptions) => {
    const { runPlan } = await import("./commands/plan.js");
    process.exitCode = await runPlan(opts, process.stdout, process.stderr);
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
    "--api-allowed-hosts <names>",
    "DNS names the admin API is reached by (Host check; localhost and IPs always pass)",
  )
  .option(
    "--api-insecure-no-auth",
    "allow a non-loopback --api-listen without --api-tokens-file (refused otherwise)",
  )
  .option(
    "--api-rate-limit <n>",
    "admin API requests per minute per client address, then 429 (0: none; loopback exempt; default 600)",
  )
  .option(
    "--api-auth-failure-limit <n>",
    "failed authentications per minute per client address, then 429 until the minute ends (0: none; default 20)",
  )
  .option(
    "--api-max-connections-per-address <n>",
    "open admin API connections allowed per client address (default 64)",
  )
  .option(
    "--webhook-secret-file <path>",
    "shared secret of POST /hooks/git (HMAC-SHA256 or GitLab token)",
  )
  .option("--redis <url>", "Redis URL (default redis://127.0.0.1:6379)")
  .option("--redis-prefix <prefix>", "Redis key prefix (default opamp-gitops)")
  .option(
    "--opamp-tokens-file <path>",
    "bearer tokens accepted from agents, one per line (`<token> groups=a,b` scopes one)",
  )
  .option("--tls-cert <path>", "PEM certificate chain for the OpAMP port")
  .option("--tls-key <path>", "PEM private key")
  .option("--tls-client-ca <path>", "require agent certificates signed by this CA (mTLS)")
  .option(
    "--advertise-url <url>",
    "OpAMP URL offered to agents in connection settings, e.g. wss://opamp.example.com/v1/opamp",
  )
  .option(
    "--advertise-ca <path>",
    "PEM CA bundle offered with a wss:// or https:// --advertise-url (default: --tls-cert)",
  )
  .option(
    "--package-dir <dir>",
    "package files served to agents at /packages/<sha256> on the OpAMP port (url may then be omitted in group.yaml)",
  )
  .option(
    "--agent-ca-cert <path>",
    "PEM CA certificate that signs agents' CSRs (with --agent-ca-key)",
  )
  .option("--agent-ca-key <path>", "PEM private key of that CA (kept in memory only)")
  .option(
    "--agent-cert-validity <duration>",
    "lifetime of issued agent certificates (default 720h)",
  )
  .option("--agent-token-validity <duration>", "lifetime of minted per-agent tokens (default 720h)")
  .option(
    "--agent-credential-rotate-at <fraction>",
    "offer a new certificate or token after this fraction of its lifetime (default 0.66)",
  )
  .option(
    "--mint-agent-tokens",
    "offer agents that send no CSR a per-agent bearer token in their connection settings",
  )
  .option("--max-csr-bytes <n>", "largest CSR an agent may send (default 8192)")
  .option(
    "--agent-csr-interval <duration>",
    "least time between two certificates signed for one agent's CSRs; 0s: no limit (default 1m)",
  )
  .option(
    "--secret-dir <folder>",
    "the only folder secret file references may read (default: none, every one is refused)",
  )
  .option(
    "--secret-env-prefix <prefix>",
    "secret env references may only name variables starting with this (default OPAMP_GITOPS_SECRET_)",
  )
  .option("--max-message-bytes <n>", "largest message after decompression (default 16777216)")
  .option("--max-connections <n>", "connections beyond which agents get 503 (default 50000)")
  .option(
    "--max-agent-attributes <n>",
    "identifying plus non-identifying attributes an agent may report (default 256)",
  )
  .option(
    "--max-attribute-bytes <n>",
    "bytes of one reported attribute (key and value) (default 4096)",
  )
  .option("--max-config-files <n>", "files in a reported effective config (default 64)")
  .option(
    "--max-config-bytes <n>",
    "bytes of all files of a reported effective config (default 1048576)",
  )
  .option("--max-health-components <n>", "components in a reported health tree (default 1024)")
  .option(
    "--max-available-components <n>",
    "entries of a reported AvailableComponents tree (default 4096)",
  )
  .option(
    "--max-error-message-bytes <n>",
    "bytes kept of an agent's error message (longer ones are cut, marked) (default 4096)",
  )
  .option("--max-agent-bytes <n>", "bytes stored per agent (all reported fields) (default 4194304)")
  .option(
    "--max-send-buffer-bytes <n>",
    "unread reply bytes after which a WebSocket agent is dropped (default 4194304)",
  )
  .option(
    "--max-connections-per-address <n>",
    "open connections allowed per source address (default: no cap)",
  )
  .option(
    "--headers-timeout <duration>",
    "time an OpAMP request may take to send its headers (default 10s)",
  )
  .option(
    "--request-timeout <duration>",
    "time an OpAMP HTTP request may take, body included (default 60s)",
  )
  .option(
    "--first-message-timeout <duration>",
    "time a WebSocket may take to send its first message (default 30s)",
  )
  .option(
    "--idle-timeout <duration>",
    "a WebSocket that sends nothing for this long is closed (default 1h)",
  )
  .option(
    "--workers <n>",
    "processes serving on this host, sharing the OpAMP and admin ports (default: the number of cores)",
  )
  .option(
    "--worker-scheduling <os|rr>",
    "with --workers: os = workers accept connections themselves (kernel's choice, may be uneven); rr = the primary hands them out round robin (default os)",
  )
  .option(
    "--malloc-trim-interval <duration>",
    "how often each process gives the C heap's free pages back to the OS (glibc malloc_trim, once a burst is over; 0 = never; default 2s)",
  )
  .option(
    "--max-pending-agents <n>",
    "agents connected but not yet answered before new ones get 503 + Retry-After (default 1000)",
  )
  .option(
    "--shed-loop-delay <duration>",
    "event-loop delay above which new agents are shed and messages get UNAVAILABLE (default 0s: off)",
  )
  .option(
    "--replica-timeout <duration>",
    "a serve process silent in Redis this long is dead; its agents are disconnected (default 15s)",
  )
  .option(
    "--leader-lease <duration>",
    "lease of a once-only duty (Git polling, status writer); a successor takes over within about this (default 5s)",
  )
  .option(
    "--git-share-max-bytes <n>",
    "bound of one commit's objects the Git lease holder shares through Redis; a larger commit is fetched by every replica (default 67108864)",
  )
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
  .option(
    "--status-effective-config <mode>",
    "agents' effective configs in the status branch: redacted (default), hash, none, or full (unredacted)",
  )
  .option(
    "--otelcol <[name=]path,...>",
    "Collector binaries that also check each commit before rollout (name= for config.distribution)",
  )
  .option("--log-level <level>", "trace|debug|info|warn|error (default info)")
  .option("--settings <file>", "settings file (YAML or JSON; keys are these flags in camelCase)")
  .addHelpText(
    "after",
    "\nPrecedence: flags, then OPAMP_GITOPS_<FLAG> environment variables (e.g. OPAMP_GITOPS_REPO),\n" +
      "then the settings file (--settings or OPAMP_GITOPS_SETTINGS), then defaults.\n" +
      "Where nothing answers at a local --redis address and redis-server is on the PATH, a private\n" +
      "one is started with its data in <state-dir>/redis and stopped on exit.\n" +
      "Exit codes: 0 stopped cleanly, 1 runtime failure (Redis unreachable, not a repository),\n" +
      "2 bad settings.",
  )
  .action(async (flags: SettingsFlags & { settings?: string }) => {
    const { runServe } = await import("./commands/serve.js");
    process.exitCode = await runServe(flags);
    process.exit();
  });

program
  .command("demo")
  .description(
    "the whole loop on this machine: an example fleet repository, the service, simulated agents",
  )
  .option("--agents <n>", "simulated agents per example group", "10")
  .option("--opamp-listen <host:port>", "OpAMP listen address", "127.0.0.1:4320")
  .option("--api-listen <host:port>", "admin API address", "127.0.0.1:4321")
  .option("--redis <url>", "Redis URL (default redis://127.0.0.1:6379, private if none answers)")
  .addHelpText(
    "after",
    "\n`npm start` runs this. Ctrl-C stops it. Exit codes: 0, 1 failure, 2 usage.",
  )
  .action(async (opts: DemoOptions) => {
    const { runDemo } = await import("./commands/demo.js");
    process.exitCode = await runDemo(opts, process.stdout);
    process.exit();
  });

const clientOptions = (cmd: Command) =>
  cmd
    .option("--api-url <url>", "the service's admin API (env OPAMP_GITOPS_API_URL)", undefined)
    .option("--api-token-file <path>", "bearer token (env OPAMP_GITOPS_API_TOKEN_FILE)")
    .addOption(
      new Option("--format <format>", "output format").choices(["text", "json"]).default("text"),
    )
    .addHelpText(
      "after",
      "\nTalks to a running `opamp-gitops serve` (default http://127.0.0.1:4321).\n" +
        "Exit codes: 0 done, 1 refused by the service (unknown group, nothing in flight),\n" +
        "2 usage, 3 the service cannot be reached or refused the token.",
    );

clientOptions(
  program
    .command("rollout")
    .description("show or steer a group's rollout: status, pause, resume, promote, abort")
    .addArgument(new Argument("<action>", "what to do").choices(ROLLOUT_ACTIONS))
    .argument("[group]", "the group (status without a group lists every group)"),
).action(async (action: RolloutAction, group: string | undefined, opts: ClientOptions) => {
  if (action !== "status" && !group) throw new UsageError(`rollout ${action} needs a <group>`);
  const { runRollout } = await import("./commands/rollout.js");
  process.exitCode = await runRollout(action, group, opts, process.stdout, process.stderr);
});

clientOptions(
  program
    .command("agents")
    .description(
      "list agents with their group, connection, config status and health; `agents restart <uid>|--group <g>` restarts them, `agents revoke <uid>` revokes an agent's certificates and tokens",
    )
    .addArgument(
      new Argument(
        "[action]",
        "restart: send RESTART to the agent or to every connected agent of --group; revoke: refuse the agent's credentials",
      ).choices(["restart", "revoke"]),
    )
    .argument("[uid]", "the agent's instance uid (with restart or revoke)")
    .option("--group <group>", "only this group")
    .addOption(
      new Option("--state <state>", "only connected or disconnected agents").choices([
        "connected",
        "disconnected",
      ]),
    ),
).action(
  async (
    action: string | undefined,
    uid: string | undefined,
    opts: ClientOptions & { group?: string; state?: string },
  ) => {
    if (action === "revoke") {
      if (!uid) throw new UsageError("agents revoke needs an instance <uid>");
      const { runAgentRevoke } = await import("./commands/agents-revoke.js");
      process.exitCode = await runAgentRevoke(uid, opts, process.stdout, process.stderr);
      return;
    }
    if (action === "restart") {
      if ((uid === undefined) === (opts.group === undefined))
        throw new UsageError("agents restart needs an <uid> or --group <group> (not both)");
      const { runAgentsRestart } = await import("./commands/rollout.js");
      process.exitCode = await runAgentsRestart(uid, opts, process.stdout, process.stderr);
      return;
    }
    const { runAgents } = await import("./commands/rollout.js");
    process.exitCode = await runAgents(opts, process.stdout, process.stderr);
  },
);

program
  .command("simulate")
  .description("run simulated agents that behave like Collectors under the OpAMP supervisor")
  .requiredOption(
    "--url <url,...>",
    "OpAMP endpoint, e.g. ws://127.0.0.1:4320/v1/opamp; several (comma-separated): agents are spread over them and fail over",
  )
  .option("--agents <n>", "number of agents", "10")
  .addOption(
    new Option("--transport <transport>", "ws, http, or mixed (every other agent on HTTP)")
      .choices(["ws", "http", "mixed"])
      .default("ws"),
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
    const { runSimulate } = await import("./commands/simulate.js");
    process.exitCode = await runSimulate(opts, process.stdout, process.stderr);
  });

class UsageError extends Error {}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof SettingsError || err instanceof UsageError) {
    process.stderr.write(`opamp-gitops: ${err.message}\n`);
    process.exit(2);
  }
  // By code, not class: the Redis module is loaded only by the commands that need it.
  if ((err as { code?: unknown })?.code === "REDIS_UNAVAILABLE") {
    process.stderr.write(`opamp-gitops: ${(err as Error).message}\n`);
    process.exit(1);
  }
  throw err;
}
