/**
 * `opamp-gitops serve` as a child process, steered with the CLI as an operator would:
 * pause / resume / promote / abort a rollout, list agents, restart the service (state kept),
 * and the errors a user meets at start: bad settings, a repository that does not exist,
 * Redis unreachable, and a private redis-server when none answers.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { connectRedis } from "../../src/redis.js";
import { findRedisServer } from "../../src/redis-private.js";
import { logLine, logLines, run, startServe, testServeArgs } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

// Long pauses: only the CLI moves this rollout past its first stage.
const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 10, pause: 1h}, {percent: 50, pause: 1h}, {percent: 100}]
  applyTimeout: 1m
heartbeatInterval: 1s
`;
const hashOf = (yaml: string) =>
  configHash([{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) }]);
const short = (h: string) => h.slice(0, 12);

interface RolloutJson {
  group: string;
  stable?: { hash: string };
  rollout?: {
    id: string;
    status: string;
    stage: number;
    hold?: { by: string };
    cohort: number;
    members: number;
  };
}

describe("serve as a process, steered by the CLI", () => {
  let repo: TestRepo;
  let redis: TestRedis;
  let stateDir: string;
  let fleet: SimulatedFleet;
  let serve: Awaited<ReturnType<typeof startServe>>;
  let opampPort: number;
  let apiUrl = "";
  const tokenFile = join(tempDir("opamp-gitops-token-"), "tokens");
  writeFileSync(tokenFile, "s3cret-admin-token\n");
  const cli = async (...args: string[]) =>
    run([...args, "--api-url", apiUrl, "--api-token-file", tokenFile]).exited;
  const rolloutJson = async () => {
    const r = await cli("rollout", "status", "edge", "--format", "json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as RolloutJson;
  };
  const serveArgs = () =>
    testServeArgs({
      repo: repo.dir,
      stateDir,
      redisPrefix: redis.prefix,
      opampPort,
      apiTokensFile: tokenFile,
    });

  before(async () => {
    repo = new TestRepo();
    repo.writeAll({
      "groups/edge/group.yaml": GROUP,
      "groups/edge/collector.yaml": collectorYaml("v1"),
    });
    repo.commit("edge v1");
    redis = await testRedis();
    stateDir = tempDir("opamp-gitops-state-");
    opampPort = await freePort();
    serve = await startServe(serveArgs());
    apiUrl = `http://127.0.0.1:${serve.apiPort}`;
    fleet = new SimulatedFleet({
      agents: 20,
      url: `ws://127.0.0.1:${opampPort}/v1/opamp`,
      attributes: { "host.role": "edge" },
      applyMs: 20,
      heartbeatSeconds: 1,
    });
    await fleet.start();
  });

  after(async () => {
    await fleet?.stop();
    serve?.child.kill("SIGKILL");
    await redis?.close();
  });

  test("the first commit reaches every agent (the first rollout is promoted by the CLI)", async () => {
    const v1 = hashOf(collectorYaml("v1"));
    // The stage started before any agent joined, so it admits joiners by their cohort score
    // (about 10 %, possibly none): wait for every member, then promote through the stages.
    await waitFor("every member", async () => (await rolloutJson()).rollout?.members === 20, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    assert.equal((await cli("rollout", "promote", "edge")).code, 0);
    assert.equal((await cli("rollout", "promote", "edge")).code, 0);
    await fleet.until((s) => s.byHash[short(v1)] === 20, 30_000);
    await waitFor("v1 stable", async () => (await rolloutJson()).stable?.hash === v1, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    assert.equal((await rolloutJson()).stable?.hash, v1);
  });

  test("pause and resume: the hold is shown with who asked; a second pause is refused", async () => {
    repo.write("groups/edge/collector.yaml", collectorYaml("v2")).commit("edge v2");
    const v2 = hashOf(collectorYaml("v2"));
    await fleet.until((s) => s.byHash[short(v2)] === 2, 30_000); // 10 % of 20, exactly
    const paused = await cli("rollout", "pause", "edge");
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^paused edge@[0-9a-f]{7}\n/);
    assert.match(paused.stdout, /held {6}by api:\S+ via 127\.0\.0\.1 \(api\)/);
    const again = await cli("rollout", "pause", "edge");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ROLLOUT_ALREADY_PAUSED|already/);
    // The status branch says what each agent should run now: the canary cohort the target,
    // the others the stable config (not the Git head), and none of them drifts.
    const v1 = hashOf(collectorYaml("v1"));
    const desired = () => {
      const out = execFileSync(
        "git",
        [
          "--git-dir",
          join(repo.dir, ".git"),
          "grep",
          "-h",
          "desiredHash:",
          "opamp-status",
          "--",
          "status/agents/edge",
        ],
        { encoding: "utf8" },
      );
      return out
        .split("\n")
        .filter(Boolean)
        .map((l) => l.trim().split(" ")[1]);
    };
    let seen: (string | undefined)[] = [];
    await waitFor(
      "2 agents on v2 and 18 on v1",
      () => {
        seen = desired();
        return (
          seen.filter((h) => h === v2).length === 2 && seen.filter((h) => h === v1).length === 18
        );
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.deepEqual(
      [seen.filter((h) => h === v2).length, seen.filter((h) => h === v1).length],
      [2, 18],
    );
    assert.equal((await cli("rollout", "resume", "edge")).code, 0);
    assert.equal((await rolloutJson()).rollout?.hold, undefined);
  });

  test("promote moves to the next stage now; abort serves every agent the stable config", async () => {
    const v1 = hashOf(collectorYaml("v1"));
    const v2 = hashOf(collectorYaml("v2"));
    const promoted = await cli("rollout", "promote", "edge", "--format", "json");
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.equal((JSON.parse(promoted.stdout) as RolloutJson).rollout?.stage, 1);
    await fleet.until((s) => s.byHash[short(v2)] === 10, 30_000);
    const aborted = await cli("rollout", "abort", "edge");
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.match(aborted.stdout, /in-progress|aborted/);
    await fleet.until((s) => s.byHash[short(v1)] === 20, 30_000);
    assert.equal((await rolloutJson()).rollout?.status, "aborted");
    const nothing = await cli("rollout", "promote", "edge");
    assert.equal(nothing.code, 1, "nothing in flight");
    assert.match(nothing.stderr, /ROLLOUT_NOT_IN_FLIGHT/);
  });

  test("agents lists every agent; unknown group, wrong token and no service have their exit codes", async () => {
    const listed = await cli("agents", "--group", "edge", "--format", "json");
    assert.equal(listed.code, 0, listed.stderr);
    const agents = JSON.parse(listed.stdout) as Array<{ instanceUid: string; group: string }>;
    assert.equal(agents.length, 20);
    assert.deepEqual(
      new Set(agents.map((a) => a.instanceUid)),
      new Set(fleet.agents.map((a) => a.uid)),
    );
    const text = await cli("agents");
    assert.match(text.stdout, /^INSTANCE UID +GROUP +CONNECTED +CONFIG +HASH +HEALTH/);
    assert.match(text.stdout, /\n20 agents\n$/);
    const unknown = await cli("rollout", "status", "nope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /ROLLOUT_UNKNOWN_GROUP/);
    const badToken = join(tempDir("opamp-gitops-token-"), "t");
    writeFileSync(badToken, "wrong\n");
    const refused = await run(["agents", "--api-url", apiUrl, "--api-token-file", badToken]).exited;
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /refused the credentials/);
    const down = await run(["agents", "--api-url", "http://127.0.0.1:1"]).exited;
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot reach the service at http:\/\/127\.0\.0\.1:1/);
    assert.equal((await run(["rollout", "pause"]).exited).code, 2, "pause needs a group");
  });

  test("SIGTERM stops cleanly; a restart keeps rollout state, agents come back", async () => {
    const paused = await rolloutJson();
    serve.child.kill("SIGTERM");
    const stopped = await serve.exited;
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /"msg":"stopped"/);
    serve = await startServe(serveArgs());
    apiUrl = `http://127.0.0.1:${serve.apiPort}`;
    const after = await rolloutJson();
    assert.equal(after.rollout?.id, paused.rollout?.id);
    assert.equal(after.rollout?.status, "aborted");
    const v1 = hashOf(collectorYaml("v1"));
    await fleet.until((s) => s.connected === 20 && s.byHash[short(v1)] === 20, 30_000);
    const listed = JSON.parse((await cli("agents", "--format", "json")).stdout) as unknown[];
    assert.equal(listed.length, 20);
  });

  test("the status branch records the abort", async () => {
    const gitdir = join(repo.dir, ".git");
    const log = await waitFor(
      "the abort on the status branch",
      () => {
        const text = execFileSync(
          "git",
          ["--git-dir", gitdir, "log", "--format=%B", "opamp-status"],
          {
            encoding: "utf8",
          },
        );
        return /aborted/.test(text) ? text : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.match(log, /edge@[0-9a-f]{7} aborted/);
  });
});

describe("serve: what a user meets at start", () => {
  const defer = deferred();
  const NO_REDIS_SERVER = { PATH: "/nonexistent" };

  test("a settings file with an unknown key and a bad value: exit 2, each named", async () => {
    const file = join(tempDir("opamp-gitops-settings-"), "settings.yaml");
    writeFileSync(file, "pollIntervall: 15s\nmaxConnections: 0\n");
    const r = await run(["serve", "--settings", file]).exited;
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown setting "pollIntervall"; did you mean "pollInterval"\?/);
    assert.match(
      r.stderr,
      /setting maxConnections is 0; expected a positive integer \(from .*settings\.yaml\)/,
    );
    writeFileSync(file, "pollInterval: 15s\npollInterval: 20s\n");
    const bad = await run(["serve", "--settings", file]).exited;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid setting --settings: .*settings\.yaml:2:1: .*pollInterval/);
  });

  test("settings from a file are used (paths relative to it); a flag wins over the environment and the file", async () => {
    const redis = await testRedis();
    defer(() => redis.close());
    const dir = tempDir("opamp-gitops-settings-");
    const file = join(dir, "settings.json");
    writeFileSync(join(dir, "admin-tokens"), "file-relative-token\n");
    writeFileSync(
      file,
      JSON.stringify({
        redisPrefix: redis.prefix,
        opampListen: "127.0.0.1:1",
        apiListen: "127.0.0.1:0",
        apiTokensFile: "admin-tokens", // relative to the settings file, not the working dir
      }),
    );
    const p = await startServe(["--settings", file, "--opamp-listen", "127.0.0.1:0"], {
      OPAMP_GITOPS_OPAMP_LISTEN: "127.0.0.1:2",
    });
    defer(() => p.child.kill("SIGKILL"));
    assert.notEqual(p.opampPort, 1);
    assert.notEqual(p.opampPort, 2);
    const api = `http://127.0.0.1:${p.apiPort}/api/v1/agents`;
    assert.equal((await fetch(api)).status, 401);
    const ok = await fetch(api, { headers: { Authorization: "Bearer file-relative-token" } });
    assert.equal(ok.status, 200);
  });

  test("a repository that does not exist: a clear message and exit 1", async () => {
    const redis = await testRedis();
    defer(() => redis.close());
    const missing = join(tempDir("opamp-gitops-missing-"), "no-such-repo");
    const r = await run([
      "serve",
      "--repo",
      missing,
      "--redis-prefix",
      redis.prefix,
      "--opamp-listen",
      "127.0.0.1:0",
      "--api-listen",
      "127.0.0.1:0",
    ]).exited;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot serve the fleet repository: .*no-such-repo/);
  });

  test("Redis unreachable at a remote address: exit 1 saying no private server is started", async () => {
    const r = await run(["serve", "--redis", "redis://admin:S3cretPW@192.0.2.1:6379"], {}).exited;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach Redis at redis:\/\/admin:\*\*\*@192\.0\.2\.1:6379/);
    assert.doesNotMatch(r.stderr + r.stdout, /S3cretPW/, "the password is never printed");
    const none = await run(["serve", "--redis", "redis://127.0.0.1:1"], NO_REDIS_SERVER).exited;
    assert.equal(none.code, 1);
    assert.match(none.stderr, /install Redis/);
  });

  test("nothing answers locally: a private redis-server with AOF in the state dir, stopped on exit", async (t) => {
    if (!findRedisServer()) {
      t.skip("redis-server is not on PATH");
      return;
    }
    const port = await freePort();
    const stateDir = tempDir("opamp-gitops-private-");
    const p = await startServe([
      "--redis",
      `redis://127.0.0.1:${port}`,
      "--state-dir",
      stateDir,
      "--opamp-listen",
      "127.0.0.1:0",
      "--api-listen",
      "127.0.0.1:0",
    ]);
    defer(() => p.child.kill("SIGKILL"));
    assert.match(p.output(), /started a private redis-server on 127\.0\.0\.1:\d+/);
    const client = await connectRedis(`redis://127.0.0.1:${port}`);
    assert.equal(await client.config("GET", "appendonly").then((v) => (v as string[])[1]), "yes");
    client.disconnect();
    assert.ok(existsSync(join(stateDir, "redis")));
    assert.ok(readdirSync(join(stateDir, "redis")).some((f) => f.startsWith("appendonly")));
    p.child.kill("SIGTERM");
    assert.equal((await p.exited).code, 0);
    await assert.rejects(connectRedis(`redis://127.0.0.1:${port}`, { timeoutMs: 1000 }));
  });

  test("Redis gone while serving: SIGTERM still ends cleanly, each step bounded", async (t) => {
    if (!findRedisServer()) {
      t.skip("redis-server is not on PATH");
      return;
    }
    const port = await freePort();
    const p = await startServe([
      "--redis",
      `redis://127.0.0.1:${port}`,
      "--state-dir",
      tempDir("opamp-gitops-gone-"),
      "--opamp-listen",
      "127.0.0.1:0",
      "--api-listen",
      "127.0.0.1:0",
      "--workers",
      "2",
    ]);
    defer(() => p.child.kill("SIGKILL"));
    const client = await connectRedis(`redis://127.0.0.1:${port}`);
    // No reply ever comes (the server is gone): send, wait, drop the client.
    void client.call("SHUTDOWN", "NOSAVE").catch(() => {});
    await new Promise((r) => setTimeout(r, 500));
    client.disconnect();
    // The private server syncs its AOF before it exits: on a busy machine that can take longer
    // than the 500 ms above, so ask until it is gone (each probe is bounded to 1 s by serve).
    let ready = await fetch(`http://127.0.0.1:${p.apiPort}/readyz`);
    for (const deadline = Date.now() + 15_000; ready.status === 200 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      ready = await fetch(`http://127.0.0.1:${p.apiPort}/readyz`);
    }
    assert.equal(ready.status, 503, "readiness answers, and says Redis is down");
    // A worker lost now is replaced by one that cannot start (its connect is refused, and it
    // exits 1, again and again). SIGTERM lands while a replacement is starting: that one has
    // nothing to drain, so the shutdown stays clean.
    const pids = logLine<{ pids: number[] }>(p.output(), "workers started")?.pids ?? [];
    assert.equal(pids.length, 2, p.output());
    try {
      process.kill(pids[0] as number, "SIGKILL");
    } catch (err) {
      // Still starting when Redis went away, it failed at its connect: the same path.
      assert.equal((err as NodeJS.ErrnoException).code, "ESRCH");
    }
    const died = () =>
      logLines<{ code: number | null }>(p.output(), "worker died; starting another");
    await waitFor("a replacement that cannot start", () => died().some((l) => l.code === 1), {
      timeoutMs: 20_000,
    });
    // The next replacement forked: SIGTERM while it starts (it connects to no Redis).
    const restarted = logLines(p.output(), "worker restarted").length;
    await waitFor(
      "the next replacement",
      () => logLines(p.output(), "worker restarted").length > restarted,
      {
        timeoutMs: 40_000,
      },
    );
    p.child.kill("SIGTERM");
    const exited = await p.exited;
    // Errors first (a worker that died while Redis was gone is logged long before the end).
    const errors = exited.stdout.split("\n").filter((l) => /"level":(50|60)/.test(l));
    assert.equal(
      exited.code,
      0,
      [...errors, "stderr:", exited.stderr.slice(-2000), "…", exited.stdout.slice(-2000)].join(
        "\n",
      ),
    );
    assert.match(exited.stdout, /"msg":"stopped"/);
    // Only the primary starts a private server: a worker still starting when Redis went away
    // used to start a second one on the same port, and readiness never saw Redis gone.
    assert.equal(exited.stdout.match(/started a private redis-server/g)?.length, 1);
  });
});
