/**
 * Each status commit names the process that wrote it in a `Status-Writer:` trailer, so an
 * operator reading `git log` of the status branch knows which replica published what, even
 * when that replica was killed before it could log the commit.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StatusWriter } from "../../src/status/status-writer.js";
import { git } from "./helpers.js";
import { fakeAgents, writerFixture } from "./writer-fixture.js";

const BRANCH = "opamp-status";

describe("status commits name their writer", () => {
  const fixture = writerFixture();

  async function flushAs(prefix: string, writerId?: string): Promise<string> {
    const r = fixture.redis();
    const states = fakeAgents(3);
    const repo = fixture.repo();
    const writer = new StatusWriter({
      redis: r.redis,
      prefix: `${r.prefix}:${prefix}`,
      repo: repo.dir,
      intervalMs: 3_600_000,
      ...(writerId !== undefined ? { writerId } : {}),
      agents: { list: async () => [...states.keys()], load: async (uid) => states.get(uid) },
    });
    try {
      const result = await writer.flush();
      assert.ok(result.commit, "committed");
      assert.ok(result.message?.includes("status files changed"), result.message);
      return `${repo.dir}/.git`;
    } finally {
      await writer.close({ flush: false });
    }
  }

  const trailers = (gitdir: string) =>
    git(gitdir, "log", "-1", "--format=%(trailers:only,unfold)", BRANCH);

  test("git reads the writer's id from the commit's trailer", async () => {
    const gitdir = await flushAs("named", "host-a:4242:0badc0de");
    assert.equal(trailers(gitdir), "Status-Writer: host-a:4242:0badc0de");
    // The summary stays the message's subject.
    assert.doesNotMatch(git(gitdir, "log", "-1", "--format=%s", BRANCH), /Status-Writer/);
  });

  test("a line break in the id cannot forge another trailer", async () => {
    const gitdir = await flushAs("forged", "host-b:1:aa\nSigned-off-by: mallory");
    assert.equal(trailers(gitdir), "Status-Writer: host-b:1:aa Signed-off-by: mallory");
  });

  test("without an id, the commit carries no trailer", async () => {
    const gitdir = await flushAs("anonymous");
    assert.equal(trailers(gitdir), "");
  });
});
