/**
 * `serve` killed with SIGKILL mid-rollout (so it writes no disconnects), together with some
 * of its agents, then restarted: the agents that come back are placed in their group and the
 * next stage reaches them through the group-wide push (their heartbeat interval is an hour,
 * so nothing else could bring it), and the agents that died with the process are marked
 * disconnected (a short --replica-timeout) and do not fail the rollout, which completes. A
 * restart after every process was gone longer than the replica timeout learns the outage
 * (whose time the rollouts take off their apply deadlines: test/queue/outage.test.ts).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { logLine, startServe, testServeArgs } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { testRedis } from "../helpers/redis.js";
import { waitForValue } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

// An hour between heartbeats: a config that reaches an agent within the test was pushed.
// applyTimeout is short and maxFailures 0, so one agent held to a deadline it cannot meet
// rolls the rollout back within the test.
const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 50, pause: 1h}, {percent: 100}]
  applyTimeout: 4s
  maxFailures: 0
  onFailure: rollback
heartbeatInterval: 1h
`;
const AGENTS = 12;
const DOOMED = 4;
const hashOf = (yaml: string) =>
  configHash([{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) }]);
const short = (h: string) => h.slice(0, 12);

interface RolloutJson {
  stable?: { hash: string };
  rollout?: { status: string; stage: number; cohort: number; members: number; applied: number };
}

/** Reads until `ok` holds (see waitForValue); a read that throws means "not yet". */
const until = <T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000) =>
  waitForValue(what, read, ok, ms);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The `edge` group on v1 in a fresh repository, and Redis with a prefix of its own. */
async function edgeFleet() {
  const repo = new TestRepo();
  repo.writeAll({
    "groups/edge/group.yaml": GROUP,
    "groups/edge/collector.yaml": collectorYaml("v1"),
  });
  repo.commit("edge v1");
  const redis = await testRedis();
  cleanups.push(() => redis.close());
  return { repo, redis };
}

test("kill -9 mid-rollout: survivors are regrouped and pushed to, lost agents do not fail it", async () => {
  const { repo, redis } = await edgeFleet();
  const stateDir = tempDir("opamp-gitops-crash-");
  const tokenFile = join(tempDir("opamp-gitops-token-"), "tokens");
  writeFileSync(tokenFile, "crash-token\n");
  const opampPort = await freePort();
  const args = [
    ...testServeArgs({
      repo: repo.dir,
      stateDir,
      redisPrefix: redis.prefix,
      opampPort,
      apiTokensFile: tokenFile,
    }),
    "--replica-timeout",
    "1s",
  ];
  let serve = await startServe(args);
  cleanups.push(() => serve.child.kill("SIGKILL"));
  const api = async <T>(path: string, method = "GET"): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${serve.apiPort}${path}`, {
      method,
      headers: {
        authorization: "Bearer crash-token",
        "x-opamp-gitops-actor": "test",
        "content-type": "application/json",
      },
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    // Of /metrics, only the agents gauge (a failure message shows it).
    const agentLines = () => text.split("\n").filter((l) => l.startsWith("opamp_gitops_agents{"));
    return (path === "/metrics" ? agentLines().join("\n") : JSON.parse(text)) as T;
  };
  const rollout = () => api<RolloutJson>("/api/v1/rollouts/edge");

  const fleet = new SimulatedFleet({
    agents: AGENTS,
    url: `ws://127.0.0.1:${opampPort}/v1/opamp`,
    attributes: { "host.role": "edge" },
    applyMs: 20,
    heartbeatSeconds: 3600,
  });
  cleanups.push(() => fleet.stop());
  await fleet.start();

  // v1 everywhere: the first rollout, promoted past its long pause.
  const v1 = hashOf(collectorYaml("v1"));
  await until("all members", rollout, (r) => r.rollout?.members === AGENTS);
  await api("/api/v1/rollouts/edge/promote", "POST");
  await fleet.until((s) => s.byHash[short(v1)] === AGENTS, 30_000);
  await until("v1 stable", rollout, (r) => r.stable?.hash === v1);

  // v2: stage 0 (half the agents) applied, then the long pause.
  repo.write("groups/edge/collector.yaml", collectorYaml("v2")).commit("edge v2");
  const v2 = hashOf(collectorYaml("v2"));
  const stage0 = await until("stage 0", rollout, (r) => r.rollout?.stage === 0);
  const cohort0 = stage0.rollout?.cohort ?? 0;
  assert.ok(cohort0 > 0 && cohort0 <= AGENTS - DOOMED, `cohort ${cohort0}`);
  await fleet.until((s) => s.byHash[short(v2)] === cohort0, 30_000);
  // And the rollout holds their APPLIED: one still in flight when the process dies comes
  // back only with the agent's reconnect, whose backoff (0.5 s doubling) may outlast the
  // stage's 4 s apply timeout on a loaded machine (seen: rolled back, 1 of 6 "no APPLIED").
  await until("stage 0 applied", rollout, (r) => r.rollout?.applied === cohort0);

  // The process dies, and with it (from the service's point of view) DOOMED agents still on
  // v1: the next stage would offer them the target.
  const exited = new Promise((r) => serve.child.once("exit", r));
  serve.child.kill("SIGKILL");
  await exited;
  const doomed = fleet.agents.filter((a) => a.runningHash === v1).slice(0, DOOMED);
  assert.equal(doomed.length, DOOMED);
  await Promise.all(doomed.map((a) => a.stop())); // their goodbye reaches no one
  const survivors = fleet.agents.filter((a) => !doomed.includes(a));

  serve = await startServe(args);
  // Every survivor is back and placed in its group: none counted as unassigned.
  await until(
    "survivors placed in edge",
    () => api<string>("/metrics"),
    (text) =>
      !/opamp_gitops_agents\{group="_unassigned"/.test(text) &&
      [...text.matchAll(/^opamp_gitops_agents\{group="edge"[^}]*\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      ) ===
        AGENTS - DOOMED,
  );
  // The agents that died with the process are disconnected within the replica timeout.
  const gone = new Set(doomed.map((a) => a.uid));
  await until(
    "lost agents disconnected",
    () => api<Array<{ instanceUid: string; connected: boolean }>>("/api/v1/agents"),
    (agents) =>
      agents.length === AGENTS && agents.every((a) => a.connected === !gone.has(a.instanceUid)),
  );

  // The next stage reaches every survivor by the group push (their heartbeat is an hour off),
  // and the rollout completes: no deadline for agents that no longer exist.
  const before = await rollout();
  assert.equal(before.rollout?.status, "in-progress", JSON.stringify(before));
  await api("/api/v1/rollouts/edge/promote", "POST");
  await fleet.until(() => survivors.every((a) => a.runningHash === v2), 30_000);
  const done = await until("rollout ended", rollout, (r) => r.rollout?.status !== "in-progress");
  assert.equal(done.rollout?.status, "completed");
  assert.equal(done.stable?.hash, v2);
});

test("a restart after every process was gone longer than the replica timeout names the outage", async () => {
  const { repo, redis } = await edgeFleet();
  const args = [
    ...testServeArgs({
      repo: repo.dir,
      stateDir: tempDir("opamp-gitops-crash-"),
      redisPrefix: redis.prefix,
      opampPort: await freePort(),
    }),
    "--replica-timeout",
    "1s",
  ];
  const first = await startServe(args);
  cleanups.push(() => first.child.kill("SIGKILL"));
  const outageLine =
    "no replica served for longer than the replica timeout: rollouts' apply deadlines are moved by the outage";
  assert.equal(logLine(first.output(), outageLine), undefined, "a first start has no outage");
  const killedAt = Date.now();
  const exited = new Promise((r) => first.child.once("exit", r));
  first.child.kill("SIGKILL");
  await exited;
  await new Promise((r) => setTimeout(r, 1500));
  const second = await startServe(args);
  cleanups.push(() => second.child.kill("SIGKILL"));
  const outage = logLine<{ downFrom: string; downMs: number }>(second.output(), outageLine);
  assert.ok(outage, second.output());
  // From the dead process' last refresh (every third of the timeout) to the second start.
  assert.ok(Date.parse(outage.downFrom) <= killedAt, outage.downFrom);
  assert.ok(outage.downMs >= 1500, String(outage.downMs));
});
