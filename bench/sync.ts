/**
 * Git sync benchmark: `npm run bench:sync`. Not part of `npm test`.
 *
 * Generates a fleet repository with 1,000 groups (a real Git repository in a temp directory,
 * realistic Collector configs: edge VMs, gateways, Kubernetes pools), then measures through
 * FleetSync with the real validator:
 *   - full load + validation of the head (cold process), loose objects and packed (git gc);
 *   - a commit that changes one group: detected (trigger), re-read and revalidated;
 *   - informational: a first clone over smart HTTP (git http-backend) + load, and the cost of
 *     matching one agent against the 1,000 groups.
 *   - `opamp-gitops plan` (runPlan, as the CLI runs it) of a commit changing one group, with
 *     10,000 agents on a status branch written by the status writer's code (issue 14).
 * Targets (issue 3): full ≤ 2 s, one-group change ≤ 100 ms; (issue 14) plan < 1 s.
 *
 * Environment: BENCH_GROUPS=1000, BENCH_CHANGES=10, BENCH_AGENTS=10000.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runPlan } from "../src/commands/plan.js";
import type { Plan } from "../src/commands/plan-model.js";
import { FleetSync, type FleetSyncEvents } from "../src/sync/index.js";
import type { RepositorySnapshot } from "../src/validate/model.js";
import { ValidationCache, validateSnapshot } from "../src/validate/validate-snapshot.js";
import { type StatusAgent, writeStatusBranch } from "../test/helpers/status-branch.js";
import { GitHttpServer, httpBackendPath } from "../test/sync/helpers/git-http-server.js";

const GROUPS = Number(process.env.BENCH_GROUPS ?? 1000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 10);
const FULL_TARGET_MS = 2000;
const PLAN_TARGET_MS = 1000;
const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const CHANGE_TARGET_MS = 100;

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "bench",
  GIT_AUTHOR_EMAIL: "bench@example.com",
  GIT_COMMITTER_NAME: "bench",
  GIT_COMMITTER_EMAIL: "bench@example.com",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
};
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "commit.gpgsign=false", ...args], {
    cwd,
    env: gitEnv,
    encoding: "utf8",
  }).trim();

function edgeConfig(i: number, version: number): string {
  return `receivers:
  hostmetrics:
    collection_interval: ${10 + (i % 5) * 10}s
    scrapers:
      cpu: {}
      memory: {}
      disk: {}
      filesystem: {}
      network: {}
      load: {}
  filelog:
    include: [/var/log/app-${i}/*.log, /var/log/syslog]
    start_at: end
    operators:
      - type: regex_parser
        regex: '^(?P<time>\\S+) (?P<severity>\\w+) (?P<msg>.*)$'
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: ${256 + (i % 4) * 128}
    spike_limit_mib: 64
  resourcedetection:
    detectors: [env, system]
    timeout: 2s
  resource:
    attributes:
      - {key: fleet.group, value: edge-${i}, action: upsert}
      - {key: fleet.revision, value: "${version}", action: upsert}
  batch:
    send_batch_size: ${512 + (i % 8) * 64}
    timeout: 5s
exporters:
  otlp:
    endpoint: gateway-${i % 20}.observability.svc:4317
    headers:
      authorization: \${env:OTLP_TOKEN}
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 127.0.0.1:13133
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [hostmetrics, otlp]
      processors: [memory_limiter, resourcedetection, resource, batch]
      exporters: [otlp]
    logs:
      receivers: [filelog, otlp]
      processors: [memory_limiter, resourcedetection, resource, batch]
      exporters: [otlp, debug]
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resource, batch]
      exporters: [otlp]
`;
}

function gatewayConfig(i: number, version: number): string {
  return `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    send_batch_size: 8192
    timeout: 2s
  resource:
    attributes:
      - {key: fleet.group, value: gateway-${i}, action: upsert}
      - {key: fleet.revision, value: "${version}", action: upsert}
exporters:
  otlphttp/tempo:
    endpoint: https://tempo-${i % 3}.example.com/otlp
  otlphttp/mimir:
    endpoint: https://mimir.example.com/otlp
    headers:
      X-Scope-OrgID: tenant-${i}
connectors:
  spanmetrics:
    histogram:
      explicit:
        buckets: [5ms, 10ms, 50ms, 100ms, 500ms, 1s]
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resource, batch]
      exporters: [otlphttp/tempo, spanmetrics]
    metrics:
      receivers: [otlp, spanmetrics]
      processors: [memory_limiter, resource, batch]
      exporters: [otlphttp/mimir]
`;
}

function groupYaml(i: number, kind: string): string {
  return `selector:
  match:
    service.name: otelcol-contrib
    fleet.pool: ${kind}-${i}
  expressions:
    - {key: deployment.environment, operator: In, values: [prod, staging]}
priority: ${i % 3}
rollout:
  stages:
    - {percent: 10, pause: 2m}
    - {percent: 50, pause: 5m}
    - {percent: 100}
  maxFailures: "5%"
heartbeatInterval: 30s
`;
}

function writeGroup(dir: string, i: number, version: number): void {
  const kind = i % 2 === 0 ? "edge" : "gateway";
  const name = `${kind}-${String(i).padStart(4, "0")}`;
  const folder = join(dir, "groups", name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "group.yaml"), groupYaml(i, kind));
  writeFileSync(
    join(folder, "collector.yaml"),
    kind === "edge" ? edgeConfig(i, version) : gatewayConfig(i, version),
  );
}

function generate(dir: string): void {
  git(dir, "init", "-q", "-b", "main");
  writeFileSync(
    join(dir, "fleet.yaml"),
    "rollout:\n  applyTimeout: 5m\n  onFailure: rollback\nheartbeatInterval: 30s\n",
  );
  for (let i = 0; i < GROUPS; i++) writeGroup(dir, i, 1);
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", `fleet of ${GROUPS} groups`);
}

interface Load {
  wallMs: number;
  event: FleetSyncEvents["updated"];
}

function newSync(repo: string, stateDir?: string): FleetSync {
  const cache = new ValidationCache();
  return new FleetSync({
    repo,
    stateDir,
    pollIntervalMs: 0,
    validate: (s: RepositorySnapshot) => validateSnapshot(s, { cache }),
  });
}

async function load(sync: FleetSync): Promise<Load> {
  let event: FleetSyncEvents["updated"] | undefined;
  const off = sync.on("updated", (e) => {
    event = e;
  });
  const stalled = sync.on("stalled", (e) => {
    console.error("stalled:", e.findings.slice(0, 5));
  });
  const t0 = performance.now();
  const outcome = await sync.trigger();
  const wallMs = performance.now() - t0;
  off();
  stalled();
  if (outcome.result !== "updated" || !event)
    throw new Error(`expected an update, got ${JSON.stringify(outcome)}`);
  return { wallMs, event };
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const verdict = (ms: number, target: number) =>
  ms <= target ? `met (≤ ${target} ms)` : `NOT met (target ≤ ${target} ms)`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

function describeLoad(label: string, l: Load): void {
  const r = l.event.read;
  console.log(
    `${label}: ${fmt(l.wallMs)} wall (read ${fmt(r?.durationMs ?? 0)}: ${r?.groupsRead} groups, ` +
      `${r?.blobsRead} blobs; validation ${fmt(l.event.validationMs)})`,
  );
}

/** Agents spread over the groups, as serve would have recorded them. */
function benchAgents(): StatusAgent[] {
  const out: StatusAgent[] = [];
  for (let n = 0; n < AGENTS; n++) {
    const i = n % GROUPS;
    const kind = i % 2 === 0 ? "edge" : "gateway";
    out.push({
      uid: `01900000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`,
      group: `${kind}-${String(i).padStart(4, "0")}`,
      attributes: {
        "service.name": "otelcol-contrib",
        "fleet.pool": `${kind}-${i}`,
        "deployment.environment": n % 10 === 0 ? "staging" : "prod",
        "host.name": `vm-${n}`,
      },
    });
  }
  return out;
}

/** Times `opamp-gitops plan` (HEAD~1 → HEAD, one group changed) in each format. */
async function benchPlan(repo: string): Promise<Array<[string, number]>> {
  const s0 = performance.now();
  writeStatusBranch(repo, benchAgents());
  console.log(`status branch with ${AGENTS} agent files written in ${fmt(performance.now() - s0)}`);
  const i = 42;
  writeGroup(repo, i, 99);
  git(repo, "commit", "-q", "-am", `plan: change group ${i}`);
  const results: Array<[string, number]> = [];
  for (const format of ["json", "markdown", "json"] as const) {
    let text = "";
    const t0 = performance.now();
    const code = await runPlan(
      { repo, base: "HEAD~1", head: "HEAD", format },
      { write: (x: string) => (text += x) },
      { write: (x: string) => process.stderr.write(x) },
      {},
    );
    const ms = performance.now() - t0;
    if (format === "json") {
      const p = JSON.parse(text) as Plan;
      console.log(
        `plan --format json (exit ${code}): ${fmt(ms)}; ${p.groups.length} group(s) listed, ` +
          `${p.agents.known} agents counted (${p.agents.note ?? "all read"}), ${p.untouchedGroups} untouched, rollout ` +
          `${JSON.stringify(p.groups[0]?.rollout?.stages.map((x) => x.cohort))}`,
      );
    } else
      console.log(`plan --format ${format} (exit ${code}): ${fmt(ms)}, ${text.length} characters`);
    results.push([
      `in process, --format ${format}${results.some(([l]) => l.endsWith(format)) ? " (again)" : ""}`,
      ms,
    ]);
  }
  // The command as CI runs it: a fresh process (module loading and schema compilation included).
  const cli = join(dirname(fileURLToPath(import.meta.url)), "../bundle/cli.js");
  const t0 = performance.now();
  execFileSync(
    process.execPath,
    [cli, "plan", "--repo", repo, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown"],
    { stdio: "ignore" },
  );
  const cold = performance.now() - t0;
  console.log(`opamp-gitops plan --format markdown, a new process: ${fmt(cold)}`);
  results.push(["new process (node start, imports, schema compilation included)", cold]);
  // What of that is the process itself: node start and the CLI's own imports (no command).
  const h0 = performance.now();
  execFileSync(process.execPath, [cli, "--help"], { stdio: "ignore" });
  console.log(
    `opamp-gitops --help, a new process (node start + CLI): ${fmt(performance.now() - h0)}`,
  );

  // Informational: a selector change can move any agent, so offline plan reads every agent
  // file of the status branch (attributes) instead of counting one folder.
  const kind = i % 2 === 0 ? "edge" : "gateway";
  const narrowed = groupYaml(i, kind).replace("values: [prod, staging]", "values: [prod]");
  writeFileSync(
    join(repo, "groups", `${kind}-${String(i).padStart(4, "0")}`, "group.yaml"),
    narrowed,
  );
  git(repo, "commit", "-q", "-am", `plan: narrow the selector of group ${i}`);
  let text = "";
  const m0 = performance.now();
  await runPlan(
    { repo, base: "HEAD~1", head: "HEAD", format: "json" },
    { write: (x: string) => (text += x) },
    { write: (x: string) => process.stderr.write(x) },
    {},
  );
  const moved = JSON.parse(text) as Plan;
  console.log(
    `plan of a selector change (agents may move; ${moved.agents.known} agent files read offline), in process: ${fmt(performance.now() - m0)}; ` +
      `${moved.groups.map((g) => `${g.name} ${g.agents.before}→${g.agents.after}`).join(", ")}`,
  );
  return results;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "opamp-gitops-bench-sync-"));
  const repo = join(root, "fleet");
  mkdirSync(repo);
  try {
    const g0 = performance.now();
    generate(repo);
    console.log(`generated ${GROUPS} groups in ${fmt(performance.now() - g0)} (${repo})`);

    // Full load, loose objects (a repository fresh from `git commit`).
    const sync = newSync(repo);
    const full = await load(sync);
    describeLoad("full load + validation (loose objects)", full);

    // One-group changes.
    const changes: Load[] = [];
    for (let k = 0; k < CHANGES; k++) {
      const i = (k * 97 + 13) % GROUPS;
      writeGroup(repo, i, k + 2);
      git(repo, "commit", "-q", "-am", `change group ${i}`);
      changes.push(await load(sync));
    }
    const wall = changes.map((c) => c.wallMs);
    const last = changes[changes.length - 1];
    console.log(
      `one-group change (${CHANGES} commits): median ${fmt(median(wall))}, max ${fmt(Math.max(...wall))} wall; ` +
        `last: read ${fmt(last?.event.read?.durationMs ?? 0)} (${last?.event.read?.groupsRead} group read, ` +
        `${last?.event.read?.groupsReused} reused), validation ${fmt(last?.event.validationMs ?? 0)}, ` +
        `refresh ${fmt(last?.event.fetchMs ?? 0)}, desired state ${fmt(last?.event.buildMs ?? 0)}, ` +
        `hashChanged ${JSON.stringify(last?.event.changes.hashChanged)}`,
    );
    await sync.stop();

    // Full load, packed objects (as a remote mirror or a gc'd repository holds them).
    git(repo, "gc", "-q");
    const packedSync = newSync(repo);
    const packed = await load(packedSync);
    describeLoad("full load + validation (packed objects)", packed);
    await packedSync.stop();

    // `opamp-gitops plan` of a one-group change, 10,000 agents known from the status branch.
    const planMs = await benchPlan(repo);

    // Informational: first clone over smart HTTP, then load.
    if (httpBackendPath()) {
      const served = join(root, "served");
      mkdirSync(served);
      git(root, "clone", "-q", "--bare", repo, join(served, "fleet.git"));
      const server = await GitHttpServer.start({ root: served });
      try {
        const remote = newSync(server.url("fleet.git"), join(root, "state"));
        const r = await load(remote);
        describeLoad("remote: first clone over smart HTTP + load + validation", r);
        await remote.stop();
      } finally {
        await server.close();
      }
    }

    // Informational: matching one agent.
    const matcher = sync.current?.matcher;
    if (matcher) {
      const agent = new Map([
        ["service.name", "otelcol-contrib"],
        ["fleet.pool", "edge-0500"],
        ["deployment.environment", "prod"],
        ["host.name", "vm-1"],
      ]);
      agent.set("fleet.pool", "edge-500");
      const n = 200_000;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) matcher.match(agent);
      const us = ((performance.now() - t0) * 1000) / n;
      console.log(
        `match one agent against ${matcher.size} groups: ${us.toFixed(2)} µs (→ ${JSON.stringify(matcher.match(agent))})`,
      );
    }

    console.log("");
    console.log(`target full load + validation ≤ ${FULL_TARGET_MS} ms:`);
    console.log(`  loose:  ${fmt(full.wallMs)}  ${verdict(full.wallMs, FULL_TARGET_MS)}`);
    console.log(`  packed: ${fmt(packed.wallMs)}  ${verdict(packed.wallMs, FULL_TARGET_MS)}`);
    console.log(`target one-group change detected + revalidated ≤ ${CHANGE_TARGET_MS} ms:`);
    console.log(`  median: ${fmt(median(wall))}  ${verdict(median(wall), CHANGE_TARGET_MS)}`);
    console.log(
      `  max:    ${fmt(Math.max(...wall))}  ${verdict(Math.max(...wall), CHANGE_TARGET_MS)}`,
    );
    console.log(
      `target plan of a one-group change, ${AGENTS} agents known < ${PLAN_TARGET_MS} ms:`,
    );
    for (const [label, ms] of planMs)
      console.log(`  ${label}: ${fmt(ms)}  ${verdict(ms, PLAN_TARGET_MS)}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
