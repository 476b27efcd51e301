/**
 * The status branch in a local repository, driven by a real OpAMP server (real agents over
 * WebSocket, real Redis) and a real FleetSync: what agents report lands in schema-valid files,
 * secrets never reach an object, heartbeats write nothing, agents move between groups, offline
 * agents expire, hostile attribute values never become paths.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import type { AgentToServer } from "../../src/opamp/messages.js";
import { BranchCheckedOutError, UnsafeStatusNameError } from "../../src/status/errors.js";
import { agentFilePath, groupFilePath } from "../../src/status/paths.js";
import { StatusWriter } from "../../src/status/status-writer.js";
import { FleetSync } from "../../src/sync/fleet-sync.js";
import { TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
import { groupFiles } from "../sync/helpers/fleet.js";
import { cleanup, git as gitIn, TestRepo, tempDir } from "../sync/helpers/git-repo.js";
import { ValidationCache, validateSnapshot } from "../sync/helpers/validator.js";
import {
  CAPS,
  checkHistory,
  commitCount,
  configWithSecrets,
  get,
  git,
  readStatusTree,
  SECRET,
  storeContains,
} from "./helpers.js";

const BRANCH = "opamp-status";

describe("status branch in a local repository", () => {
  let t: TestServer;
  let repo: TestRepo;
  let gitdir: string;
  let sync: FleetSync;
  let writer: StatusWriter;
  let clock = Date.now();
  const log = capturedLogger("warn");
  const agents: TestAgent[] = [];

  const description = (service: string, host: string) => ({
    identifyingAttributes: [{ key: "service.name", value: { stringValue: service } }],
    nonIdentifyingAttributes: [
      { key: "host.name", value: { stringValue: host } },
      { key: "os.type", value: { stringValue: "linux" } },
    ],
  });
  const effective = (label: string) => ({
    configMap: {
      configMap: {
        "collector.yaml": { body: Buffer.from(configWithSecrets(label)), contentType: "text/yaml" },
      },
    },
  });
  const hashOf = (group: string) => sync.current?.groups.get(group)?.configHash ?? "";
  const applied = (hash: string) => ({
    lastRemoteConfigHash: Buffer.from(hash, "hex"),
    status: RemoteConfigStatus.APPLIED,
  });

  async function agent(service: string, host: string, extra: Partial<AgentToServer> = {}) {
    const a = new TestAgent({ transport: "websocket", url: t.url });
    await a.connect();
    agents.push(a);
    const state: Partial<AgentToServer> = {
      capabilities: CAPS,
      agentDescription: description(service, host),
      health: {
        healthy: true,
        status: "StatusOK",
        componentHealthMap: {
          "pipeline:traces": { healthy: true, status: "StatusOK" },
          "exporter:otlphttp": { healthy: true, status: "StatusOK" },
        },
      },
      effectiveConfig: effective(host),
      ...extra,
    };
    await a.send(state);
    await a.send(state);
    return a;
  }
  const uidOf = (a: TestAgent) => {
    const h = a.uidHex;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const head = () => git(gitdir, "rev-parse", BRANCH);

  before(async () => {
    t = await startTestServer();
    repo = new TestRepo();
    repo.writeAll({ ...groupFiles("edge"), ...groupFiles("gateway") }).commit("two groups");
    gitdir = `${repo.dir}/.git`;
    const cache = new ValidationCache();
    sync = new FleetSync({
      repo: repo.dir,
      pollIntervalMs: 0,
      validate: (s) => validateSnapshot(s, { cache }),
    });
    await sync.start();
    writer = new StatusWriter({
      redis: t.redis.redis,
      prefix: t.redis.prefix,
      repo: repo.dir,
      intervalMs: 3_600_000,
      agentEvents: t.server.events,
      fleetSync: sync,
      agents: t.server.store,
      now: () => clock,
      packAfterObjects: false,
      logger: log.logger,
    });
    writer.start();
  });

  after(async () => {
    for (const a of agents) a.close();
    await writer.close({ flush: false });
    await sync.stop();
    await t.close();
    cleanup(repo.dir);
  });

  test("agents' reports appear in schema-valid files; the message says what happened", async () => {
    const edge = hashOf("edge");
    const a1 = await agent("edge", "edge-1", { remoteConfigStatus: applied(edge) });
    await agent("edge", "edge-2", { remoteConfigStatus: applied(edge) });
    const a3 = await agent("edge", "edge-3", {
      remoteConfigStatus: {
        lastRemoteConfigHash: Buffer.from(edge, "hex"),
        status: RemoteConfigStatus.FAILED,
        errorMessage: "exporter otlp: connection refused",
      },
      health: { healthy: false, status: "StatusPermanentError", lastError: "exporter down" },
    });
    const lone = await agent("unknown-service", "lab-1");
    await writer.settled();
    const r = await writer.flush();
    assert.ok(r.commit, "a commit was made");
    assert.equal(head(), r.commit);
    assert.equal(git(gitdir, "rev-list", "--max-parents=0", BRANCH), r.commit, "orphan root");
    const files = readStatusTree(gitdir, BRANCH);

    const f1 = files.get(agentFilePath("edge", uidOf(a1)));
    assert.ok(f1, "edge agent file");
    assert.equal(f1.instanceUid, uidOf(a1));
    assert.equal(f1.group, "edge");
    assert.equal(f1.connected, true);
    assert.equal(f1.transport, "websocket");
    assert.match(String(f1.lastConnected), /^\d{4}-\d\d-\d\dT/);
    assert.equal(f1.lastDisconnected, null);
    assert.equal(get(f1, "description", "identifying", "service.name"), "edge");
    assert.equal(get(f1, "description", "nonIdentifying", "host.name"), "edge-1");
    assert.deepEqual(f1.capabilities, [
      "ReportsStatus",
      "AcceptsRemoteConfig",
      "ReportsEffectiveConfig",
      "ReportsHealth",
      "ReportsRemoteConfig",
    ]);
    assert.deepEqual(f1.remoteConfig, {
      desiredHash: edge,
      desiredCommit: sync.current?.groups.get("edge")?.hashCommit,
      reportedHash: edge,
      status: "APPLIED",
      error: null,
    });
    assert.equal(f1.drift, false);
    assert.equal(get(f1, "health", "healthy"), true);
    assert.equal(get(f1, "health", "components", "exporter:otlphttp", "status"), "StatusOK");
    const content = get(f1, "effectiveConfig", "files", "collector.yaml", "content");
    const MARK = /^<redacted:[0-9a-f]{6}>$/;
    assert.match(String(get(content, "exporters", "otlphttp", "headers", "Authorization")), MARK);
    assert.equal(get(content, "exporters", "otlphttp", "headers", "x-tenant"), "edge-1");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder itself, kept as written
    assert.equal(get(content, "exporters", "kafka", "token"), "${env:KAFKA_TOKEN}");
    assert.match(String(get(content, "extensions", "oauth2client", "client_secret")), MARK);
    assert.match(String(get(f1, "effectiveConfig", "hash")), /^[0-9a-f]{64}$/);

    const f3 = files.get(agentFilePath("edge", uidOf(a3)));
    assert.equal(get(f3, "remoteConfig", "status"), "FAILED");
    assert.equal(get(f3, "remoteConfig", "error"), "exporter otlp: connection refused");
    assert.equal(get(f3, "drift"), true);
    assert.equal(get(f3, "health", "lastError"), "exporter down");

    assert.ok(files.has(agentFilePath(null, uidOf(lone))), "unassigned agent");
    assert.equal(get(files.get(agentFilePath(null, uidOf(lone))), "group"), null);

    const fleet = files.get("status/fleet.yaml");
    assert.deepEqual(fleet?.agents, {
      total: 4,
      connected: 4,
      healthy: 3,
      unhealthy: 1,
      drifted: 1,
      unassigned: 1,
      unauthorized: 0,
    });
    assert.equal(get(fleet, "groups", "edge", "agents"), 3);
    assert.equal(get(fleet, "groups", "gateway", "agents"), 0);
    assert.equal(get(fleet, "groups", "edge", "configHash"), edge);
    assert.equal(get(fleet, "hashes", edge, "applied"), 2);
    assert.equal(get(fleet, "hashes", edge, "failed"), 1);
    assert.equal(get(fleet, "source", "serving"), sync.current?.commit);

    const g = files.get(groupFilePath("edge"));
    assert.equal(get(g, "served", "configHash"), edge);
    assert.equal(get(g, "validation", "result"), "passed");
    assert.ok(files.has(groupFilePath("gateway")));

    const message = git(gitdir, "log", "-1", "--format=%B", BRANCH);
    assert.match(
      message,
      new RegExp(
        `edge: 2 applied ${edge.slice(0, 7)}, 1 failed: "exporter otlp: connection refused", 1 unhealthy: "exporter down", 3 connected`,
      ),
    );
    assert.match(message, /unassigned: 1 connected/);
    assert.match(message, new RegExp(`serving ${sync.current?.commit.slice(0, 7)}`));
    assert.equal(storeContains(gitdir, SECRET), false, "no secret in any object");
  });

  test("1,000 heartbeats with no change produce no commit", async () => {
    const before = head();
    const live = agents.slice(0, 4);
    for (let i = 0; i < 250; i++)
      await Promise.all(live.map((a) => a.send({ capabilities: CAPS })));
    await writer.settled();
    assert.equal(await writer.store.size(), 0, "nothing pending");
    const r = await writer.flush();
    assert.equal(r.commit, undefined);
    assert.equal(head(), before);
  });

  test("a disconnect and a health change are one commit that says so", async () => {
    const before = commitCount(gitdir, BRANCH);
    const [a1, a2] = agents;
    a2?.close();
    await a1?.send({ capabilities: CAPS, health: { healthy: false, lastError: "queue full" } });
    await new Promise((r) => setTimeout(r, 200));
    await writer.settled();
    const r = await writer.flush();
    assert.ok(r.commit);
    assert.equal(commitCount(gitdir, BRANCH), before + 1);
    assert.match(r.message ?? "", /edge: 1 unhealthy: "queue full", 1 disconnected/);
    const files = readStatusTree(gitdir, BRANCH);
    const f2 = files.get(agentFilePath("edge", uidOf(a2 as TestAgent)));
    assert.equal(f2?.connected, false);
    assert.match(String(f2?.lastDisconnected), /^\d{4}-/);
    assert.equal(get(files.get("status/fleet.yaml"), "agents", "connected"), 3);
  });

  test("agents move with their group; a validation failure is written and said", async () => {
    // edge agents now match a new, higher-priority group.
    repo
      .write(
        "groups/edge-new/group.yaml",
        "selector:\n  match:\n    service.name: edge\npriority: 5\n",
      )
      .write("groups/edge-new/collector.yaml", groupFiles("x")["groups/x/collector.yaml"] as string)
      .commit("edge-new");
    await sync.trigger();
    await new Promise((r) => setTimeout(r, 50));
    await writer.reconcile();
    const r = await writer.flush();
    assert.ok(r.commit);
    const files = readStatusTree(gitdir, BRANCH);
    const moved = [...files.keys()].filter((p) => p.startsWith("status/agents/edge-new/"));
    assert.equal(moved.length, 3);
    assert.equal([...files.keys()].filter((p) => p.startsWith("status/agents/edge/")).length, 0);
    assert.match(r.message ?? "", /edge: 3 left/);
    assert.match(r.message ?? "", /edge-new: 3 joined/);
    assert.ok(files.has(groupFilePath("edge-new")));

    // An invalid commit: never served; its errors are in the group file and the message.
    repo.write(
      "groups/gateway/collector.yaml",
      "service:\n  pipelines:\n    traces:\n      receivers: [nope]\n",
    );
    const bad = repo.commit("broken gateway");
    await sync.trigger();
    const r2 = await writer.flush();
    assert.ok(r2.commit);
    assert.match(
      r2.message ?? "",
      new RegExp(`validation failed at ${bad.slice(0, 7)}: \\d+ errors`),
    );
    const g = readStatusTree(gitdir, BRANCH).get(groupFilePath("gateway"));
    assert.equal(get(g, "validation", "result"), "failed");
    assert.equal(get(g, "validation", "commit"), bad);
    assert.ok(Number(get(g, "validation", "errors")) > 0);
    assert.ok((get(g, "validation", "findings") as unknown[]).length > 0);
    assert.notEqual(get(g, "served", "commit"), bad, "the last valid commit is still served");
  });

  test("agents offline longer than the retention period are removed", async () => {
    clock = Date.now() + 8 * 24 * 3600_000;
    const r = await writer.flush();
    assert.ok(r.commit);
    assert.match(r.message ?? "", /1 removed/);
    const files = readStatusTree(gitdir, BRANCH);
    assert.equal([...files.keys()].filter((p) => p.startsWith("status/agents/")).length, 3);
    assert.equal(get(files.get("status/fleet.yaml"), "agents", "total"), 3);
    clock = Date.now();
  });

  test("every file of every commit follows its schema; no secret anywhere", () => {
    assert.deepEqual(
      log.lines.filter((l) => Number(l.level) >= 50),
      [],
      "no error logged",
    );
    assert.ok(checkHistory(gitdir, BRANCH) >= 5);
    assert.equal(storeContains(gitdir, SECRET), false);
    // The config branch was never touched.
    assert.equal(gitIn(repo.dir, "log", "--format=%s", "-1", "main"), "broken gateway");
  });

  test("hostile attribute values never become paths", async () => {
    const h = await agent("../../x", "../../etc/passwd", {
      agentDescription: {
        identifyingAttributes: [{ key: "service.name", value: { stringValue: "../../x" } }],
        nonIdentifyingAttributes: [
          { key: "../../y", value: { stringValue: "../../z" } },
          { key: "__proto__", value: { stringValue: "polluted" } },
        ],
      },
    });
    await writer.settled();
    await writer.flush();
    const paths = git(gitdir, "ls-tree", "-r", "--name-only", BRANCH).split("\n");
    for (const p of paths)
      assert.match(
        p,
        /^status\/(fleet\.yaml|groups\/[a-z0-9-]+\.yaml|agents\/([a-z0-9-]+|_unassigned)\/[0-9a-f-]{36}\.yaml)$/,
      );
    const f = readStatusTree(gitdir, BRANCH).get(agentFilePath(null, uidOf(h)));
    assert.equal(get(f, "description", "nonIdentifying", "../../y"), "../../z");
    assert.ok(Object.hasOwn(get(f, "description", "nonIdentifying") as object, "__proto__"));
    assert.throws(() => agentFilePath("../../x", uidOf(h)), UnsafeStatusNameError);
    assert.throws(() => agentFilePath(null, "../../x"), UnsafeStatusNameError);
    assert.throws(() => agentFilePath("Edge", uidOf(h)), UnsafeStatusNameError);
    assert.throws(() => groupFilePath("a/b"), UnsafeStatusNameError);
    assert.throws(() => agentFilePath(null, uidOf(h).toUpperCase()), UnsafeStatusNameError);
  });

  test("a branch checked out in the work tree is refused", async () => {
    const w = new StatusWriter({
      redis: t.redis.redis,
      prefix: `${t.redis.prefix}-co`,
      repo: repo.dir,
      mode: "folder",
      branch: "main",
    });
    await assert.rejects(w.flush(), BranchCheckedOutError);
    await w.close();
    const d = tempDir();
    cleanup(d);
  });
});
