/**
 * A group deleted from Git while the service was stopped: at the next start its rollout state
 * is removed too (no ghost rollout with timers and pinned configs).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { connectRedis } from "../../src/redis.js";
import { Service } from "../../src/service/service.js";
import { loadSettings } from "../../src/settings.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const defer = deferred();

const GROUP = (role: string) => `selector:
  match: {host.role: ${role}}
rollout:
  stages: [{percent: 10, pause: 1h}, {percent: 100}]
`;

test("a group removed from Git while the service was down loses its rollout at the next start", async () => {
  const repo = new TestRepo();
  repo.writeAll({
    "groups/edge/group.yaml": GROUP("edge"),
    "groups/edge/collector.yaml": collectorYaml("e"),
    "groups/gateway/group.yaml": GROUP("gateway"),
    "groups/gateway/collector.yaml": collectorYaml("g"),
  });
  repo.commit("two groups");
  const redis = await testRedis();
  const settings = loadSettings(
    {
      repo: repo.dir,
      stateDir: tempDir("opamp-gitops-removed-"),
      opampListen: "127.0.0.1:0",
      apiListen: "127.0.0.1:0",
      redisPrefix: redis.prefix,
    },
    {},
  );
  const run = async () => {
    const conn = await connectRedis(settings.redisUrl);
    const service = new Service({ settings, redis: conn, logger: capturedLogger("warn").logger });
    await service.start();
    // The apply runs on FleetSync's `updated` event; wait (bounded) until the rollouts hold
    // exactly Git's groups.
    const want = () => [...(service.sync?.current?.groups.keys() ?? [])].sort().join();
    await waitFor(
      "the rollouts to hold Git's groups",
      () => service.rollouts.groups().join() === want(),
      {
        timeoutMs: 5000,
        intervalMs: 50,
      },
    );
    await service.rollouts.idle();
    const groups = service.rollouts.groups();
    await service.close();
    conn.disconnect();
    return groups;
  };
  defer(async () => {
    await redis.close();
  });
  assert.deepEqual(await run(), ["edge", "gateway"]);
  repo.git("rm", "-rq", "groups/gateway");
  repo.commit("gateway retired");
  assert.deepEqual(await run(), ["edge"]);
  assert.equal(await redis.redis.sismember(`${redis.prefix}:rollout-groups`, "gateway"), 0);
});
