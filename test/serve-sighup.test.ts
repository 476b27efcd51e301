/**
 * `kill -HUP` of a running `serve` re-reads its credential files at once (rotation without a
 * restart), even where the file poll cannot see the change: a secret volume that swaps the
 * contents in place and keeps the size and modification time.
 */
import assert from "node:assert/strict";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { logLine, startServe, testServeArgs } from "./helpers/cli.js";
import { freePort } from "./helpers/ports.js";
import { testRedis } from "./helpers/redis.js";
import { deferred } from "./helpers/teardown.js";
import { waitFor } from "./helpers/wait.js";
import { collectorYaml } from "./sync/helpers/fleet.js";
import { TestRepo, tempDir } from "./sync/helpers/git-repo.js";

const defer = deferred();

test("SIGHUP re-reads the admin tokens file that the poll cannot see change; the old token is refused", async () => {
  const repo = new TestRepo();
  repo.writeAll({
    "groups/edge/group.yaml": "selector:\n  match: {host.role: edge}\n",
    "groups/edge/collector.yaml": collectorYaml("v1"),
  });
  repo.commit("edge");
  const redis = await testRedis();
  defer(() => redis.close());
  const tokens = join(tempDir("opamp-gitops-hup-"), "tokens");
  // Same length and a whole-second mtime, so that the rewrite below leaves size, inode and
  // mtime as they were: only SIGHUP can make serve read it.
  const when = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  writeFileSync(tokens, "token-old\n");
  utimesSync(tokens, when, when);
  const serve = await startServe(
    testServeArgs({
      repo: repo.dir,
      stateDir: tempDir("opamp-gitops-hup-state-"),
      redisPrefix: redis.prefix,
      opampPort: await freePort(),
      apiTokensFile: tokens,
    }),
  );
  defer(() => serve.child.kill("SIGKILL"));
  const status = async (token: string) =>
    (
      await fetch(`http://127.0.0.1:${serve.apiPort}/api/v1/groups`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).status;
  assert.equal(await status("token-old"), 200);

  writeFileSync(tokens, "token-new\n");
  utimesSync(tokens, when, when);
  serve.child.kill("SIGHUP");
  await waitFor("the new token accepted", async () => (await status("token-new")) === 200, {
    detail: () => serve.output().slice(-2000),
  });
  assert.equal(await status("token-old"), 401);
  assert.ok(logLine(serve.output(), "reloading credentials"), "the signal is logged");
  assert.equal(serve.child.exitCode, null, "serve keeps running");
});
