/**
 * The status writer keeps its lock through a long flush: a lock key that expired mid-flush
 * while nobody else took it is taken back, and a lock another replica took stops the flush
 * (fencing). The expiry is simulated by deleting the key while the writer renders.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WriterLock } from "../../src/status/lock.js";
import { statusKeys } from "../../src/status/pending-store.js";
import { StatusWriter } from "../../src/status/status-writer.js";
import { git } from "./helpers.js";
import { fakeAgents, writerFixture } from "./writer-fixture.js";

const BRANCH = "opamp-status";

describe("status writer lock during a flush", () => {
  const fixture = writerFixture();

  /** A writer whose agent source runs `midFlush` when the first agent is loaded. */
  function writerWith(prefix: string, midFlush: () => Promise<void>) {
    const states = fakeAgents(120);
    let fired = false;
    const repo = fixture.repo();
    const writer = new StatusWriter({
      redis: fixture.redis().redis,
      prefix,
      repo: repo.dir,
      intervalMs: 3_600_000,
      packAfterObjects: false,
      agents: {
        list: async () => [...states.keys()],
        load: async (uid) => {
          if (!fired) {
            fired = true;
            await midFlush();
          }
          return states.get(uid);
        },
      },
    });
    return { writer, gitdir: `${repo.dir}/.git` };
  }

  test("a lock that expired mid-flush while nobody took it is kept: the flush commits", async (t) => {
    const r = fixture.redis();
    const prefix = `${r.prefix}:expired`;
    const key = statusKeys(prefix, BRANCH).lock;
    const { writer, gitdir } = writerWith(prefix, async () => {
      await r.redis.del(key);
    });
    t.after(() => writer.close({ flush: false }));
    const result = await writer.flush();
    assert.ok(result.commit, "committed");
    assert.ok(result.files > 120, "120 agent files and the fleet file");
    assert.equal(git(gitdir, "rev-parse", BRANCH), result.commit);
    assert.equal(writer.isWriter, true);
    assert.match((await r.redis.get(key)) ?? "", /^1:/, "same hold, same fence");
  });

  test("a lock another replica took mid-flush stops the flush: nothing is published", async (t) => {
    const r = fixture.redis();
    const prefix = `${r.prefix}:taken`;
    const key = statusKeys(prefix, BRANCH).lock;
    const other = new WriterLock(r.redis, key);
    const { writer, gitdir } = writerWith(prefix, async () => {
      await r.redis.del(key);
      assert.equal(await other.acquire(), true);
    });
    t.after(async () => {
      await writer.close({ flush: false });
      await other.release();
    });
    await assert.rejects(
      writer.flush(),
      (e: Error & { code?: string }) => e.code === "STATUS_LOCK_LOST",
    );
    assert.equal(writer.isWriter, false);
    assert.throws(() => git(gitdir, "rev-parse", "--verify", BRANCH), "nothing published");
    assert.equal(await other.renew(), true, "the successor still holds the lock");
  });
});
