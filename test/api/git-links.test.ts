/** Links from the console to the Git host: GitHub, GitLab and Gitea remotes; others none. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { gitWeb } from "../../src/api/console/git-links.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";

test("commit and file:line links for GitHub, GitLab and Gitea remotes; none for others", () => {
  const gh = gitWeb("https://x-access-token:secret@github.com/acme/fleet.git");
  assert.equal(gh?.commit(SHA), `https://github.com/acme/fleet/commit/${SHA}`);
  assert.equal(
    gh?.file(SHA, "groups/edge/collector.yaml", 12),
    `https://github.com/acme/fleet/blob/${SHA}/groups/edge/collector.yaml#L12`,
  );
  const scp = gitWeb("git@github.com:acme/fleet.git");
  assert.equal(scp?.commit(SHA), `https://github.com/acme/fleet/commit/${SHA}`);
  const gl = gitWeb("https://gitlab.example.com/group/sub/fleet");
  assert.equal(gl?.commit(SHA), `https://gitlab.example.com/group/sub/fleet/-/commit/${SHA}`);
  assert.equal(
    gl?.file(SHA, "groups/a b/x.yaml", 3),
    `https://gitlab.example.com/group/sub/fleet/-/blob/${SHA}/groups/a%20b/x.yaml#L3`,
  );
  const gt = gitWeb("ssh://git@gitea.internal:2222/ops/fleet.git");
  assert.equal(
    gt?.file(SHA, "fleet.yaml", 1),
    `https://gitea.internal/ops/fleet/src/commit/${SHA}/fleet.yaml#L1`,
  );
  for (const other of [
    "/srv/git/fleet",
    "https://git.example.com/acme/fleet.git",
    "file:///x",
    undefined,
  ])
    assert.equal(gitWeb(other), undefined, String(other));
});
