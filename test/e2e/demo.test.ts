/**
 * The quick start (`npm start` = `opamp-gitops demo`) as a user meets it: it serves an example
 * repository to simulated agents, a commit to that repository starts a canary, the status
 * branch fills, and Ctrl-C stops it leaving no Redis keys behind.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../helpers/cli.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const defer = deferred();

test("the demo serves the example fleet, rolls out a commit, and cleans up on Ctrl-C", async () => {
  const redis = await testRedis();
  const demo = run([
    "demo",
    "--agents",
    "4",
    "--opamp-listen",
    "127.0.0.1:0",
    "--api-listen",
    "127.0.0.1:0",
  ]);
  defer(async () => {
    demo.child.kill("SIGKILL");
    await redis.close();
    const root = /the folder (\S+) is kept/.exec(demo.output())?.[1];
    if (root?.includes("opamp-gitops-demo-")) rmSync(root, { recursive: true, force: true });
  });
  await waitFor("ready", () => /simulated Collectors per group/.test(demo.output()), {
    child: demo.child,
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  const repo = /fleet repository (\S+)/.exec(demo.output())?.[1] ?? "";
  const prefix = `opamp-gitops-${/opamp-gitops-demo-\w+/.exec(repo)?.[0]}`;
  const apiUrl = /--api-url (\S+)/.exec(demo.output())?.[1] ?? "";
  assert.match(apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  // Every example group's agents got their config.
  const agents = await run(["agents", "--api-url", apiUrl, "--format", "json"]).exited;
  assert.equal(agents.code, 0, agents.stderr);
  const groups = new Set(
    (JSON.parse(agents.stdout) as Array<{ group: string }>).map((a) => a.group),
  );
  assert.deepEqual([...groups].sort(), ["edge", "gateway", "k8s-pool"]);
  // The suggested edit starts a canary and lands on the status branch.
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", repo, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@t",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@t",
      },
    });
  const file = join(repo, "groups/edge/collector.yaml");
  execFileSync("sed", ["-i", "s/send_batch_size: 8192/send_batch_size: 4096/", file]);
  git("commit", "-qam", "edge: smaller batches");
  const sha = git("rev-parse", "--short=7", "HEAD").trim();
  await waitFor(
    "the canary",
    () => demo.output().includes(`rollout  edge@${sha}: stage 1 started`),
    { child: demo.child, timeoutMs: 30_000, intervalMs: 50 },
  );
  await waitFor(
    "a status commit about it",
    () => {
      try {
        return git("log", "--format=%B", "opamp-status").includes(`edge@${sha} started stage 1/3`);
      } catch {
        return false; // no status commit yet
      }
    },
    { child: demo.child, timeoutMs: 30_000, intervalMs: 50 },
  );
  assert.ok((await redis.redis.keys(`${prefix}:*`)).length > 0, "the demo's keys");
  demo.child.kill("SIGINT");
  const exited = await demo.exited;
  assert.equal(exited.code, 0, exited.stderr);
  assert.deepEqual(await redis.redis.keys(`${prefix}:*`), [], "nothing left in Redis");
});
