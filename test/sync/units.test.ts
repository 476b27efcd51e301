/** Small pieces: path checks, branch names, backoff, credentials, desired-state diffs. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Backoff } from "../../src/backoff.js";
import { configHash } from "../../src/config-hash.js";
import { authHeaders } from "../../src/sync/credentials.js";
import { buildDesiredState, diffDesiredStates } from "../../src/sync/desired-state.js";
import { checkBranchName, normalizeFilePath, normalizeRepoPath } from "../../src/sync/paths.js";
import type { FleetSpec, GroupSpec } from "../../src/validate/model.js";
import { cleanup, tempDir } from "./helpers/git-repo.js";

const dirs: string[] = [];
after(() => cleanup(...dirs));

describe("paths", () => {
  test("normalized, relative, never above the root", () => {
    assert.equal(normalizeRepoPath(""), "");
    assert.equal(normalizeRepoPath("./"), "");
    assert.equal(normalizeRepoPath("a//b/./c/"), "a/b/c");
    assert.equal(normalizeFilePath("schemas/x.json"), "schemas/x.json");
    for (const bad of ["..", "a/../b", "/abs", "C:/x", "a\\b", "a\0b"])
      assert.throws(() => normalizeRepoPath(bad), { code: "SYNC_UNSAFE_PATH" }, bad);
    assert.throws(() => normalizeFilePath("."), { code: "SYNC_UNSAFE_PATH" });
  });

  test("branch names as git check-ref-format has them", () => {
    assert.equal(checkBranchName("main"), "main");
    assert.equal(checkBranchName("refs/heads/release/v1"), "release/v1");
    for (const bad of [
      "",
      "a..b",
      "-x",
      "a b",
      "x.lock",
      "a~1",
      "a:b",
      "@",
      ".hidden",
      "a//b",
      "a/",
    ])
      assert.throws(() => checkBranchName(bad), { code: "SYNC_INVALID_SOURCE" }, bad);
  });
});

describe("backoff", () => {
  test("doubles from the initial delay up to the cap, with jitter below the nominal delay", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => b.next()),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(b.attempts, 6);
    b.reset();
    assert.equal(b.next(), 100);
    const j = new Backoff({ initialMs: 1000, jitter: 0.2 }, () => 1);
    assert.equal(j.next(), 800);
  });
});

describe("credentials", () => {
  test("token as basic password (default user x-access-token) or bearer; file re-read; env injected", async () => {
    const d = tempDir();
    dirs.push(d);
    const file = join(d, "token");
    writeFileSync(file, "abc\n");
    const basic = await authHeaders({ type: "token", token: { file } }, {});
    assert.equal(
      basic.Authorization,
      `Basic ${Buffer.from("x-access-token:abc").toString("base64")}`,
    );
    const gitlab = await authHeaders({ type: "token", token: { file }, username: "oauth2" }, {});
    assert.equal(gitlab.Authorization, `Basic ${Buffer.from("oauth2:abc").toString("base64")}`);
    writeFileSync(file, "def");
    assert.deepEqual(await authHeaders({ type: "token", token: { file }, scheme: "bearer" }, {}), {
      Authorization: "Bearer def",
    });
    assert.deepEqual(
      await authHeaders({ type: "token", token: { env: "T" }, scheme: "bearer" }, { T: " xyz " }),
      { Authorization: "Bearer xyz" },
    );
    assert.deepEqual(await authHeaders(undefined, {}), {});
    writeFileSync(file, "\n");
    await assert.rejects(
      authHeaders({ type: "token", token: { file } }, {}),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "SYNC_CREDENTIALS_UNAVAILABLE");
        assert.match(err.message, /token file .* is empty/);
        return true;
      },
    );
  });
});

describe("desired state", () => {
  const spec = (name: string, body: string, priority = 0): GroupSpec => {
    const files = [{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(body) }];
    return {
      name,
      selector: { match: { app: name }, expressions: [] },
      priority,
      files,
      configHash: configHash(files),
      schema: "otelcol",
      rollout: {
        stages: [{ percent: 100, pauseMs: 0 }],
        applyTimeoutMs: 1,
        maxFailures: { count: 0 },
        onFailure: "rollback",
        paused: false,
      },
      heartbeatIntervalSeconds: 30,
      telemetry: {},
    };
  };
  const fleet = (...groups: GroupSpec[]): FleetSpec => ({
    groups: new Map(groups.map((g) => [g.name, g])),
  });

  test("provenance keeps the introducing commit while the hash is unchanged; diff lists changes", () => {
    const s1 = buildDesiredState(fleet(spec("a", "1"), spec("b", "1"), spec("c", "1")), "c1");
    const s2 = buildDesiredState(
      fleet(spec("a", "1", 3), spec("b", "2"), spec("d", "1")),
      "c2",
      s1.groups,
    );
    assert.equal(s2.groups.get("a")?.hashCommit, "c1");
    assert.equal(s2.groups.get("b")?.hashCommit, "c2");
    assert.equal(s2.groups.get("d")?.hashCommit, "c2");
    assert.deepEqual(diffDesiredStates(s1, s2), {
      added: ["d"],
      removed: ["c"],
      hashChanged: ["b"],
      settingsChanged: ["a"],
    });
    assert.equal(s2.matcher.match(new Map([["app", "b"]])).group, "b");
  });
});
