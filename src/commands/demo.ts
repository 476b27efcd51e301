/**
 * `opamp-gitops demo` (`npm start`): the whole loop on one machine in one command. Copies
 * examples/repo into a new Git repository in a temp folder (rollout pauses shortened to
 * 20 s so a canary is watchable), serves it (a private redis-server if none answers),
 * starts simulated agents for each example group, and prints what to edit and where to look.
 * Runs until Ctrl-C; the temp folder is kept (its path is printed) so the status branch can
 * be read afterwards. Its Redis keys have their own prefix and are deleted on exit.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SimulatedFleet } from "../opamp/index.js";
import { packageFile } from "../package-files.js";
import type { RolloutNotice } from "../queue/index.js";
import { deleteKeysWithPrefix } from "../redis.js";
import { initRepository } from "../sync/index.js";
import { runUntilSignal, type ServeHandle, startServe } from "./serve.js";

export interface DemoOptions {
  opampListen: string;
  apiListen: string;
  redis?: string;
  /** Agents per example group. */
  agents: string;
}

/** The example groups and attributes that their selectors match. */
const GROUPS: Array<{ group: string; serviceName: string; attributes: Record<string, string> }> = [
  {
    group: "edge",
    serviceName: "otelcol-contrib",
    attributes: { "deployment.environment": "prod", "host.role": "edge" },
  },
  { group: "gateway", serviceName: "otelcol-contrib", attributes: { "host.role": "gateway" } },
  {
    group: "k8s-pool",
    serviceName: "otelcol-k8s",
    attributes: { "k8s.cluster.name": "demo", "deployment.environment": "prod" },
  },
];

const EXAMPLES = fileURLToPath(packageFile("../../examples/repo"));

/** Copies the example repository to `dir` with every rollout pause cut to 20 s. */
function copyExample(dir: string): void {
  cpSync(EXAMPLES, dir, { recursive: true });
  const shorten = (file: string) =>
    writeFileSync(file, readFileSync(file, "utf8").replace(/pause: \d+[smh]/g, "pause: 20s"));
  shorten(join(dir, "fleet.yaml"));
  for (const g of readdirSync(join(dir, "groups"))) shorten(join(dir, "groups", g, "group.yaml"));
}

function describeNotice(n: RolloutNotice): string | undefined {
  switch (n.type) {
    case "started":
      return `${n.rolloutId}: rollout started (${n.stages} stages)`;
    case "stage-started":
      return `${n.rolloutId}: stage ${n.stage + 1} started, ${n.percent} % (${n.cohort} of ${n.members} agents)`;
    case "stage-reopened":
      return `${n.rolloutId}: stage ${n.stage + 1} reopened: it passed with nobody applying, agent ${n.uid.slice(0, 8)} is its canary now`;
    case "failed":
      return `${n.rolloutId}: agent ${n.uid.slice(0, 8)} ${n.reason}${n.error ? `: ${n.error}` : ""}`;
    case "rolled-back":
      return `${n.rolloutId}: ROLLED BACK: ${n.reason}`;
    case "completed":
      return `${n.rolloutId}: completed, every agent runs ${n.hash.slice(0, 7)}`;
    case "paused":
    case "resumed":
    case "promoted":
    case "aborted":
      return `${n.rolloutId}: ${n.type} by ${n.by}`;
    default:
      return undefined;
  }
}

export async function runDemo(opts: DemoOptions, out: NodeJS.WriteStream): Promise<number> {
  const agents = Number(opts.agents);
  if (!Number.isInteger(agents) || agents < 1 || agents > 2000) {
    process.stderr.write(`opamp-gitops: --agents: "${opts.agents}" is not 1..2000\n`);
    return 2;
  }
  const root = mkdtempSync(join(tmpdir(), "opamp-gitops-demo-"));
  const repo = join(root, "fleet");
  copyExample(repo);
  await initRepository(repo, { message: "Example fleet (opamp-gitops demo)" });
  const say = (line: string) => out.write(`${line}\n`);
  say(`opamp-gitops demo: fleet repository ${repo}`);
  const prefix = `opamp-gitops-${basename(root)}`;
  const fleets: SimulatedFleet[] = [];
  return runUntilSignal(
    async () => {
      const handle = await startServe(
        {
          repo,
          stateDir: join(root, "state"),
          opampListen: opts.opampListen,
          apiListen: opts.apiListen,
          pollInterval: "2s",
          statusInterval: "3s",
          logLevel: "error",
          // Its own keys: a demo never meets an earlier demo's agents or rollouts.
          redisPrefix: prefix,
          ...(opts.redis ? { redis: opts.redis } : {}),
        },
        {
          progress: (line) => say(`  ${line}`),
          // The user's OPAMP_GITOPS_* settings (tokens, TLS) would lock the demo's agents out.
          env: {},
          // The demo leaves nothing behind in a shared Redis.
          beforeQuit: (redis) => deleteKeysWithPrefix(redis, prefix),
        },
      );
      await startFleets(handle, fleets, agents, say);
      say(instructions(handle, agents, repo, root));
      return handle;
    },
    {
      onStop: async () => {
        say("stopping…");
        await Promise.all(fleets.map((f) => f.stop()));
      },
    },
  );
}

/** Follows rollouts and status commits on the terminal, and starts the agents of each group. */
async function startFleets(
  handle: ServeHandle,
  fleets: SimulatedFleet[],
  agents: number,
  say: (line: string) => void,
): Promise<void> {
  handle.service.rollouts.events.on("*", (n) => {
    const text = describeNotice(n);
    if (text) say(`  rollout  ${text}`);
  });
  handle.service.status?.on("flushed", (f) => {
    if (f.commit) say(`  status   ${f.commit.slice(0, 7)} ${f.message?.split("\n")[0]}`);
  });
  const url = `ws://127.0.0.1:${handle.opampPort}/v1/opamp`;
  fleets.push(
    ...GROUPS.map(
      (g) =>
        new SimulatedFleet({
          agents,
          url,
          transport: "mixed",
          serviceName: g.serviceName,
          attributes: g.attributes,
          failWhen: "BREAK-ME",
          applyMs: 300,
          heartbeatSeconds: 5,
        }),
    ),
  );
  await Promise.all(fleets.map((f) => f.start()));
}

function instructions(handle: ServeHandle, agents: number, repo: string, root: string): string {
  const api = `http://127.0.0.1:${handle.apiPort}`;
  const cli = `node ${process.argv[1] ?? "dist/bundle/cli.js"}`;
  return `
${agents} simulated Collectors per group (${GROUPS.map((g) => g.group).join(", ")}) are connected.

Watch a canary rollout: edit a group's config and commit it
  cd ${repo}
  sed -i 's/send_batch_size: 8192/send_batch_size: 4096/' groups/edge/collector.yaml
  git commit -am "edge: smaller batches"
  ${cli} rollout status edge --api-url ${api}
Make the canary fail (agents refuse configs containing BREAK-ME) and watch the rollback
  echo "# BREAK-ME" >> groups/edge/collector.yaml && git commit -am "edge: broken"
What really ran, as Git history (the status branch)
  git log --oneline opamp-status
  git show opamp-status:status/groups/edge.yaml
Admin API ${api}/api/v1/rollouts  agents ${api}/api/v1/agents  metrics ${api}/metrics

Ctrl-C stops the demo (the folder ${root} is kept).
`;
}
