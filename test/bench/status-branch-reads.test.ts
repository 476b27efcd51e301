/**
 * bench:serve reads serve's status branch to know when a flush rendered the agents it
 * connected (statusAgentFilesSince) and how many commits fell in the connect window
 * (statusCommitsSince): checked here against a real Git repository.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { statusAgentFilesSince, statusCommitsSince, statusHead } from "../../bench/serve-load.js";

const repo = mkdtempSync(join(tmpdir(), "bench-status-"));
after(() => rmSync(repo, { recursive: true, force: true }));
const git = (...args: string[]) =>
  execFileSync("git", ["-C", repo, ...args], {
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@localhost",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@localhost",
    },
  }).trim();

function commitAgents(names: string[], message: string): void {
  mkdirSync(join(repo, "status/agents/g"), { recursive: true });
  for (const n of names) writeFileSync(join(repo, "status/agents/g", `${n}.yaml`), `uid: ${n}\n`);
  git("add", "-A");
  git("commit", "-q", "-m", message);
}

test("status commits and agent files since a head, and nothing before the branch exists", () => {
  git("init", "-q", "-b", "main");
  writeFileSync(join(repo, "README.md"), "fleet\n");
  git("add", "-A");
  git("commit", "-q", "-m", "init");
  assert.equal(statusHead(repo), undefined);
  assert.equal(statusCommitsSince(repo, undefined), 0);
  assert.equal(statusAgentFilesSince(repo, undefined), 0);

  git("checkout", "-q", "--orphan", "opamp-status");
  git("rm", "-q", "-r", "--cached", ".");
  rmSync(join(repo, "README.md"));
  commitAgents(["a", "b"], "warm-up");
  const warm = statusHead(repo);
  assert.ok(warm);
  assert.equal(statusAgentFilesSince(repo, undefined), 2);
  assert.equal(statusCommitsSince(repo, undefined), 1);

  commitAgents(["c", "d", "e"], "first flush of the connect");
  commitAgents(["a", "f"], "second flush: a rewritten unchanged, f new");
  assert.equal(statusCommitsSince(repo, warm), 2);
  // Added or modified since the warm-up: c, d, e, f (a's file is unchanged).
  assert.equal(statusAgentFilesSince(repo, warm), 4);
  assert.equal(statusAgentFilesSince(repo, undefined), 6);
});
