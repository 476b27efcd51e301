/**
 * `serve --workers 2`: one OpAMP port answered by two processes (node:cluster). Agents land
 * on both workers (the owner stored with each agent names the worker's pid), every agent is
 * configured, the admin port answers /healthz and /metrics, a killed worker is replaced, and
 * SIGTERM to the primary stops everything with exit code 0.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { logLine, startServe, testServeArgs } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { testRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const AGENTS = 16;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Pids of the processes that own the agents, as stored in Redis ("<host>:<pid>:<id>/<conn>"). */
async function ownerPids(
  redis: Awaited<ReturnType<typeof testRedis>>,
  prefix: string,
): Promise<Map<number, number>> {
  const uids = await redis.redis.smembers(`${prefix}:agents`);
  const pids = new Map<number, number>();
  for (const uid of uids) {
    const owner = await redis.redis.hget(`${prefix}:agent:${uid}`, "owner");
    const pid = Number(owner?.split(":")[1]);
    pids.set(pid, (pids.get(pid) ?? 0) + 1);
  }
  return pids;
}

test("serve --workers 2: agents on both workers, one port, admin API, clean shutdown", async () => {
  const repo = new TestRepo();
  repo.writeAll({
    "groups/edge/group.yaml":
      "selector:\n  match: {host.role: edge}\nrollout:\n  stages: [{percent: 100}]\n",
    "groups/edge/collector.yaml": collectorYaml("v1"),
  });
  repo.commit("edge v1");
  const redis = await testRedis();
  cleanups.push(() => redis.close());
  const opampPort = await freePort();
  const args = testServeArgs({
    repo: repo.dir,
    stateDir: tempDir("opamp-gitops-workers-"),
    redisPrefix: redis.prefix,
    opampPort,
  });
  // The shared helper asks for one process; this test asks for two.
  args.splice(args.indexOf("--workers"), 2, "--workers", "2");
  const serve = await startServe(args);
  cleanups.push(() => serve.child.kill("SIGKILL"));
  const started = logLine<{ pids: number[]; scheduling: string }>(
    serve.output(),
    "workers started",
  );
  assert.equal(started?.pids.length, 2, serve.output());
  assert.equal(started?.scheduling, "os", "the default --worker-scheduling reached cluster");
  // Linux shows a process's start environment: each worker got glibc's arena limit (unless
  // this run's environment chose one, which is passed on as is).
  for (const pid of started?.pids ?? []) {
    const environ = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    assert.ok(
      environ.includes(`MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? "2"}`),
      `worker ${pid}: ${environ.filter((e) => e.startsWith("MALLOC")).join(" ") || "no MALLOC_*"}`,
    );
  }
  // Both workers serve before agents come (each logs "serving").
  const servingLines = () =>
    serve
      .output()
      .split("\n")
      .filter((l) => l.includes('"msg":"serving"'));
  await waitFor("two workers serving", () => servingLines().length >= 2, {
    timeoutMs: 30_000,
    intervalMs: 100,
    detail: () => serve.output(),
  });
  assert.equal(servingLines().length, 2, serve.output());

  const fleet = new SimulatedFleet({
    agents: AGENTS,
    url: `ws://127.0.0.1:${opampPort}/v1/opamp`,
    attributes: { "host.role": "edge" },
    applyMs: 10,
    batch: 4,
  });
  cleanups.push(() => fleet.stop());
  await fleet.start();
  await fleet.until((s) => s.applied >= AGENTS && s.connected === AGENTS, 60_000);

  const pids = await ownerPids(redis, redis.prefix);
  assert.deepEqual(
    [...pids.keys()].sort(),
    [...(started?.pids ?? [])].sort(),
    `agents by owner pid: ${JSON.stringify([...pids])}`,
  );
  const health = await fetch(`http://127.0.0.1:${serve.apiPort}/healthz`);
  assert.equal(health.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${serve.apiPort}/metrics`)).text();
  assert.match(metrics, /opamp_gitops_agents\{/);
  assert.match(metrics, /^opamp_gitops_rollout_commits_total \d+$/m);
  assert.match(metrics, /^opamp_gitops_rollout_write_conflicts_total \d+$/m);

  // A worker killed: the primary starts another, and its agents reconnect to the port.
  const victim = started?.pids[0] as number;
  process.kill(victim, "SIGKILL");
  await waitFor("a third worker serving", () => servingLines().length >= 3, {
    timeoutMs: 60_000,
    intervalMs: 100,
    detail: () => serve.output(),
  });
  assert.ok(logLine(serve.output(), "worker died; starting another"), serve.output());
  assert.equal(servingLines().length, 3, "a third worker served");
  await fleet.until((s) => s.connected === AGENTS, 60_000);

  await fleet.stop();
  serve.child.kill("SIGTERM");
  const { code } = await serve.exited;
  assert.equal(code, 0, serve.errors());
  assert.ok(logLine(serve.output(), "stopped"), "the primary logs that it stopped");
});
