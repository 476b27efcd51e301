/**
 * Three `serve` processes on one Redis and one Git repository (served over smart HTTP, so
 * every fetch is seen) acting as one service, and losing one:
 * - agents spread over the three (the simulator's URL pool, as a load balancer would);
 * - Git polled and fetched by one replica at a time (its lease): the others never ask the
 *   remote, they take each new head's objects from Redis, so M commits cost M fetches
 *   whatever the number of replicas, and every replica serves each new commit;
 * - a staged rollout shared by all three: its cohorts count agents on every replica, and a
 *   stage reaches agents of every replica by push (their heartbeat is an hour off);
 * - the replica holding the status branch lease is killed (SIGKILL) mid-rollout: its agents
 *   reconnect to the others, one of its agents never comes back and is marked disconnected,
 *   the status writer and the Git polling move to a survivor, and the rollout completes;
 * - after the loss, the next commit is fetched once (by whoever holds the Git lease now) and
 *   its rollout completes without the lost agent (it is no member: it cannot fail it);
 * - the status branch: every commit names the lease holder of its time in its Status-Writer
 *   trailer (commits of the replicas never interleave: one run per writer), each published
 *   flush a live replica logged is on it under that replica's name, and it ends
 *   showing every agent's final state (nothing pending was lost with the killed writer).
 * No timing is asserted: every wait is a generous bound.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { type CliRun, logLine, startServe, testServeArgs } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { testRedis } from "../helpers/redis.js";
import { waitForValue } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { GitHttpServer, httpBackendPath } from "../sync/helpers/git-http-server.js";
import { bareRepo, TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 30, pause: 1h}, {percent: 100}]
  applyTimeout: 20s
  maxFailures: 0
  onFailure: rollback
heartbeatInterval: 1h
`;
const AGENTS = 12;
const TOKEN = "replicas-token";
const hashOf = (yaml: string) =>
  configHash([{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) }]);
const short = (h: string) => h.slice(0, 12);

interface RolloutJson {
  stable?: { hash: string };
  rollout?: { status: string; stage: number; cohort: number; members: number };
}
type Replica = CliRun & { opampPort: number; apiPort: number; url: string };

/** Reads until `ok` holds (see waitForValue); a read that throws means "not yet". */
const until = <T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000) =>
  waitForValue(what, read, ok, ms);

async function api<T>(rep: Replica, path: string, method = "GET"): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${rep.apiPort}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      "x-opamp-gitops-actor": "test",
      "content-type": "application/json",
    },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (path === "/metrics" ? text : JSON.parse(text)) as T;
}

/** One sample of a metric of one replica (labels as written, e.g. `{duty="git"}`). */
async function metric(rep: Replica, name: string): Promise<number> {
  const text = await api<string>(rep, "/metrics");
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

/** Status commits each replica logged, in its own order: [commit, replica index]. */
function loggedCommits(
  replicas: Replica[],
): Array<{ commit: string; replica: number; at: number }> {
  const out: Array<{ commit: string; replica: number; at: number }> = [];
  replicas.forEach((rep, replica) => {
    for (const line of rep.output().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const o = JSON.parse(line) as { msg?: string; commit?: string; time?: number };
        if (o.msg?.startsWith("status: ") && o.commit)
          out.push({ commit: o.commit, replica, at: o.time ?? 0 });
      } catch {
        // a half-written last line of a killed process
      }
    }
  });
  return out.sort((a, b) => a.at - b.at);
}

/** What the replicas logged about Git, and the remote's requests (for a failure's message). */
function gitLog(replicas: Replica[], git: GitHttpServer): string {
  const lines = replicas.flatMap((rep, i) =>
    rep
      .output()
      .split("\n")
      .filter((l) => /Git|fleet repository/.test(l))
      .map((l) => `replica ${i}: ${l.slice(0, 300)}`),
  );
  const requests = git.requests.map(
    (r) => `${r.method} ${r.url} ${r.protocol ?? ""} ${r.wants?.join(",") ?? ""}`,
  );
  return [...lines, ...requests].join("\n");
}

/** The unlogged commits (subject, time) and every status log line, for a failure's message. */
function explain(remote: string, commits: string[], replicas: Replica[]): string {
  const shown = commits.map((c) =>
    execFileSync(
      "git",
      [
        "-C",
        remote,
        "log",
        "-1",
        "--format=%H %ad %(trailers:key=Status-Writer,valueonly,unfold) %s",
        c,
      ],
      {
        encoding: "utf8",
      },
    ).trim(),
  );
  const lines = replicas.flatMap((rep, i) =>
    rep
      .output()
      .split("\n")
      .filter((l) => l.includes('"status: '))
      .map((l) => `replica ${i}: ${l.slice(0, 400)}`),
  );
  return [...shown, ...lines].join("\n");
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("three replicas act as one service and survive losing one mid-rollout", {
  skip: httpBackendPath() ? false : "git-http-backend not installed",
}, async (t) => {
  const root = tempDir("opamp-gitops-replicas-remote-");
  const remote = bareRepo(root, "fleet.git");
  const work = new TestRepo();
  work.git("remote", "add", "origin", remote);
  work
    .writeAll({
      "groups/edge/group.yaml": GROUP,
      "groups/edge/collector.yaml": collectorYaml("v1"),
    })
    .commit("edge v1");
  work.git("push", "-q", "origin", "main");
  const git = await GitHttpServer.start({ root });
  cleanups.push(() => git.close());
  const redis = await testRedis();
  cleanups.push(() => redis.close());
  const tokenFile = join(tempDir("opamp-gitops-token-"), "tokens");
  writeFileSync(tokenFile, `${TOKEN}\n`);

  const replicas: Replica[] = [];
  for (let i = 0; i < 3; i++) {
    const opampPort = await freePort();
    const args = [
      ...testServeArgs({
        repo: git.url("fleet.git"),
        stateDir: tempDir(`opamp-gitops-replica${i}-`),
        redisPrefix: redis.prefix,
        opampPort,
        apiTokensFile: tokenFile,
      }),
      "--replica-timeout",
      "2s",
      "--leader-lease",
      "3s",
    ];
    const rep = await startServe(args);
    cleanups.push(() => rep.child.kill("SIGKILL"));
    replicas.push({ ...rep, url: `ws://127.0.0.1:${opampPort}/v1/opamp` });
  }
  const alive = () => replicas.filter((r) => r.child.exitCode === null && !r.child.killed);
  const first = () => alive()[0] as Replica;
  const rollout = () => api<RolloutJson>(first(), "/api/v1/rollouts/edge");

  const fleet = new SimulatedFleet({
    agents: AGENTS,
    urls: replicas.map((r) => r.url),
    attributes: { "host.role": "edge" },
    applyMs: 20,
    heartbeatSeconds: 3600,
  });
  cleanups.push(() => fleet.stop());
  await fleet.start();
  assert.deepEqual(
    Object.values(fleet.summary().byUrl),
    [4, 4, 4],
    "agents spread over the three replicas",
  );

  // v1 everywhere: one rollout whose members are the agents of all three replicas.
  const v1 = hashOf(collectorYaml("v1"));
  await until("all members", rollout, (r) => r.rollout?.members === AGENTS);
  await api(first(), "/api/v1/rollouts/edge/promote", "POST");
  await fleet.until((s) => s.byHash[short(v1)] === AGENTS, 60_000);
  await until("v1 stable", rollout, (r) => r.stable?.hash === v1);
  // Fetches of the watched branch (the status writer fetches its own branch too).
  const mainCommits = () => work.git("rev-list", "main").trim().split("\n");
  const fetches = () => git.fetchesOf(mainCommits()).length;
  assert.equal(fetches(), 1, "the first commit was fetched once for the three replicas");

  // Git is polled by one replica at a time: over a quiet while, one counter of reads moves.
  const gitLeader = await until(
    "one Git lease holder",
    async () => Promise.all(replicas.map((r) => metric(r, 'opamp_gitops_leader{duty="git"}'))),
    (held) => held.filter((h) => h === 1).length === 1,
  );
  const checks0 = await Promise.all(
    replicas.map((r) => metric(r, "opamp_gitops_git_checks_total")),
  );
  const fetches0 = git.requests.length;
  await new Promise((r) => setTimeout(r, 2_000)); // ten poll intervals
  const checks1 = await Promise.all(
    replicas.map((r) => metric(r, "opamp_gitops_git_checks_total")),
  );
  const polled = checks1.map((c, i) => c - (checks0[i] as number));
  assert.deepEqual(
    polled.map((d) => d > 0),
    gitLeader.map((h) => h === 1),
    `only the lease holder reads Git (reads per replica: ${polled})`,
  );
  assert.ok(git.requests.length > fetches0, "the lease holder polled the remote");

  // v2: one push to the remote; every replica learns it, the rollout's first stage reaches
  // agents wherever they are connected.
  work.write("groups/edge/collector.yaml", collectorYaml("v2")).commit("edge v2");
  work.git("push", "-q", "origin", "main");
  const v2 = hashOf(collectorYaml("v2"));
  const stage0 = await until("stage 0", rollout, (r) => r.rollout?.stage === 0);
  const cohort0 = stage0.rollout?.cohort ?? 0;
  assert.ok(cohort0 > 0 && cohort0 < AGENTS - 1, `cohort ${cohort0}`);
  await fleet.until((s) => s.byHash[short(v2)] === cohort0, 60_000);
  // Every replica read the new head (told by the lease holder, not by its own polling).
  const head = work.git("rev-parse", "HEAD").trim();
  for (const rep of replicas)
    await until(
      `replica ${rep.url} serves the pushed commit`,
      () => api<{ servedCommit?: string }>(rep, "/api/v1/groups/edge"),
      (g) => g.servedCommit === head,
    );
  assert.equal(fetches(), 2, "two commits, two fetches (not one per replica)");
  assert.deepEqual(
    (await Promise.all(replicas.map((r) => metric(r, "opamp_gitops_git_checks_total")))).map(
      (c) => c > 0,
    ),
    gitLeader.map((h) => h === 1),
    "the replicas that do not hold the Git lease never asked the remote",
  );

  // The status writer dies mid-rollout, with one of its agents (never back): one still on v1
  // where it has one. Cohorts follow uid scores, so now and then all of its agents are in
  // the first stage's; then the lost agent is on v2, and the v3 rollout below still shows a
  // lost member left out of the gates.
  const writerFlags = await Promise.all(
    replicas.map((r) => metric(r, 'opamp_gitops_leader{duty="status"}')),
  );
  const victim = replicas[writerFlags.indexOf(1)] ?? (replicas[0] as Replica);
  const own = fleet.agents.filter((a) => a.url === victim.url);
  const doomed = own.find((a) => a.runningHash === v1) ?? own[0];
  assert.ok(doomed, "the killed replica has agents");
  t.diagnostic(`the lost agent runs ${doomed.runningHash === v1 ? "v1" : "v2"}`);
  const exited = new Promise((r) => victim.child.once("exit", r));
  victim.child.kill("SIGKILL");
  await exited;
  await doomed.stop(); // before its reconnect: its goodbye reaches no one
  const survivors = fleet.agents.filter((a) => a !== doomed);

  // Its agents reconnect to the other two; the lost one is marked disconnected.
  await fleet.until((s) => s.connected === AGENTS - 1 && (s.byUrl[victim.url] ?? 0) === 0, 60_000);
  await until(
    "lost agent disconnected",
    () => api<Array<{ instanceUid: string; connected: boolean }>>(first(), "/api/v1/agents"),
    (agents) =>
      agents.length === AGENTS &&
      agents.every((a) => a.connected === (a.instanceUid !== doomed.uid)),
  );
  // A survivor took the status writer's lease.
  await until(
    "a new status writer",
    () => Promise.all(alive().map((r) => metric(r, 'opamp_gitops_leader{duty="status"}'))),
    (held) => held.filter((h) => h === 1).length === 1,
  );

  // The next stage reaches every survivor by push, and the rollout completes.
  const before = await rollout();
  assert.equal(before.rollout?.status, "in-progress", JSON.stringify(before));
  const promotedAt = performance.now();
  await api(first(), "/api/v1/rollouts/edge/promote", "POST");
  await fleet.until(() => survivors.every((a) => a.runningHash === v2), 60_000, 10);
  // Informative only (the machine may be loaded): promote to every survivor applied.
  t.diagnostic(`last stage on both replicas: ${Math.round(performance.now() - promotedAt)} ms`);
  const done = await until("rollout ended", rollout, (r) => r.rollout?.status !== "in-progress");
  assert.equal(done.rollout?.status, "completed", JSON.stringify(done));
  assert.equal(done.stable?.hash, v2);

  // The status branch ends showing every survivor on v2 and the lost agent disconnected:
  // what the killed writer had pending was published by its successor.
  const statusOf = (uid: string) =>
    execFileSync("git", ["-C", remote, "show", `opamp-status:status/agents/edge/${uid}.yaml`], {
      encoding: "utf8",
    });
  await until(
    "final state on the status branch",
    async () =>
      fleet.agents.map((a) => {
        try {
          return statusOf(a.uid);
        } catch {
          return "";
        }
      }),
    (files) =>
      files.every((text, i) => {
        const agent = fleet.agents[i];
        if (agent === doomed) return /connected: false/.test(text);
        return /connected: true/.test(text) && text.includes(v2);
      }),
  );

  // Agent events only mark agents dirty in Redis (the writer renders at flush time): every
  // mark, the killed writer's included, was rendered by its successor.
  await until(
    "no agent left dirty",
    () => redis.redis.zcard(`${redis.prefix}:status:{opamp-status}:dirty`),
    (dirty) => dirty === 0,
  );

  // Every commit on the branch names its writer (a Status-Writer trailer), one of the
  // replicas, and the writers never interleave: one at a time, each taking over once.
  // The trailer, not the logs: a SIGKILLed process may lose its last log lines.
  // The logs first: every commit logged by then is on the branch read after.
  const logged = loggedCommits(replicas);
  const ids = replicas.map(
    (rep) => logLine<{ replicaId?: string }>(rep.output(), "serving")?.replicaId,
  );
  const onBranch = execFileSync(
    "git",
    [
      "-C",
      remote,
      "log",
      "--reverse",
      "--first-parent",
      "--format=%H %(trailers:key=Status-Writer,valueonly,unfold,separator=%x2C)",
      "opamp-status",
    ],
    { encoding: "utf8" },
  )
    .trim()
    .split("\n")
    .map((line) => {
      const [commit = "", writer = ""] = line.split(" ");
      return { commit, replica: ids.indexOf(writer) };
    });
  const why = () =>
    explain(
      remote,
      onBranch.map((c) => c.commit),
      replicas,
    );
  assert.ok(
    onBranch.every((c) => c.replica >= 0),
    `every commit names a replica:\n${why()}`,
  );
  const runs = onBranch.filter((c, i) => i === 0 || onBranch[i - 1]?.replica !== c.replica);
  assert.ok(
    runs.length <= 2 && new Set(runs.map((r) => r.replica)).size === runs.length,
    `one writer at a time: ${runs.map((r) => r.replica)}\n${why()}`,
  );
  // The logs agree: what a replica logged as published is on the branch, under its name;
  // only the killed replica may have published commits it had no time to log.
  assert.equal(new Set(logged.map((l) => l.commit)).size, logged.length, "no commit logged twice");
  const writerOf = new Map(onBranch.map((c) => [c.commit, c.replica]));
  assert.ok(
    logged.every((l) => writerOf.get(l.commit) === l.replica),
    `every published flush is on the branch, under its writer's name:\n${why()}`,
  );
  // Unlogged: the killed replica's last commits, and a live writer's newest ones (pushed
  // after the logs were read, or their line not yet written).
  const loggedSet = new Set(logged.map((l) => l.commit));
  const killed = replicas.indexOf(victim);
  const lastLogged = onBranch.findLastIndex((c) => loggedSet.has(c.commit));
  assert.ok(
    onBranch.every((c, i) => loggedSet.has(c.commit) || c.replica === killed || i > lastLogged),
    `no live replica's commit went unlogged:\n${why()}`,
  );

  // A third commit: fetched once more, by the Git lease holder of now (a survivor that had
  // only ever taken heads from Redis, if the killed replica held it), and served by both.
  work.write("groups/edge/collector.yaml", collectorYaml("v3")).commit("edge v3");
  work.git("push", "-q", "origin", "main");
  const v3 = hashOf(collectorYaml("v3"));
  const head3 = work.git("rev-parse", "HEAD").trim();
  for (const rep of alive())
    await until(
      `replica ${rep.url} serves the third commit`,
      () => api<{ servedCommit?: string }>(rep, "/api/v1/groups/edge"),
      (g) => g.servedCommit === head3,
    );
  assert.equal(fetches(), 3, `three commits, three fetches:\n${gitLog(replicas, git)}`);
  // Its rollout completes: the lost agent, disconnected, is left out of its gates (with
  // maxFailures 0, one member held to an apply deadline it cannot meet rolls it back).
  await until(
    "next rollout",
    rollout,
    (r) => r.rollout?.status === "in-progress" && r.rollout.stage === 0,
  );
  await api(first(), "/api/v1/rollouts/edge/promote", "POST");
  await fleet.until(() => survivors.every((a) => a.runningHash === v3), 60_000, 10);
  const done3 = await until(
    "next rollout ended",
    rollout,
    (r) => r.rollout?.status !== "in-progress",
  );
  assert.equal(done3.rollout?.status, "completed", JSON.stringify(done3));
});
