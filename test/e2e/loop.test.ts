/**
 * The whole loop in one process with real parts: a Git repository, validation, staged
 * rollouts in Redis, the OpAMP server, and simulated agents that behave like the Collector
 * supervisor. A commit is rolled out through every stage; a config that breaks agents is
 * rolled back; an invalid commit is never served.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { runValidate } from "../../src/commands/validate.js";
import { configHash } from "../../src/config-hash.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { SimulatedFleet } from "../../src/opamp/index.js";
import type { Service } from "../../src/service/service.js";
import { STALE_CONNECTION_MS } from "../../src/service/status-wiring.js";
import { TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { get, git, readStatusTree, type StatusTree } from "../status/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 10, pause: 0s}, {percent: 50, pause: 0s}, {percent: 100}]
  applyTimeout: 10s
  maxFailures: 0
  onFailure: rollback
heartbeatInterval: 1s
`;
const hashOf = (yaml: string) =>
  configHash([{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) }]);
const short = (h: string) => h.slice(0, 12);

/** Waits (bounded) until the edge group's rollout has `status`; returns the group status. */
async function rolloutStatus(service: Service, status: string) {
  return waitFor(
    `rollout ${status}`,
    () => {
      const st = service.rollouts.status("edge");
      return st?.rollout?.status === status ? st : undefined;
    },
    {
      timeoutMs: 20_000,
      intervalMs: 50,
      detail: () => JSON.stringify(service.rollouts.status("edge")),
    },
  );
}

/**
 * Waits (bounded) until the status branch's tree satisfies `ok`; returns it. Every file read
 * is checked against its schema (readStatusTree).
 */
async function statusBranch(repo: TestRepo, ok: (t: StatusTree) => boolean): Promise<StatusTree> {
  const gitdir = join(repo.dir, ".git");
  let last: StatusTree = new Map();
  return waitFor(
    "the status branch to match",
    () => {
      const head = git(gitdir, "for-each-ref", "--format=%(objectname)", "refs/heads/opamp-status");
      if (!head.trim()) return undefined;
      last = readStatusTree(gitdir, "opamp-status");
      return ok(last) ? last : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, detail: () => `files: ${[...last.keys()].join(", ")}` },
  );
}

/** The parts ("; "-separated) of the status branch's commit subjects, newest first. */
function statusLog(repo: TestRepo): string[] {
  return git(join(repo.dir, ".git"), "log", "--format=%s", "opamp-status")
    .split("\n")
    .flatMap((s) => s.split("; "));
}

describe("the loop: Git → validation → staged rollout → OpAMP → reports", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let fleet: SimulatedFleet;
  let api = "";
  let opampUrl = "";
  const log = capturedLogger("info");
  const secretFile = join(tempDir("opamp-gitops-secret-"), "webhook");
  writeFileSync(secretFile, "hook-secret\n");

  before(async () => {
    repo = new TestRepo();
    repo.writeAll({
      "groups/edge/group.yaml": GROUP,
      "groups/edge/collector.yaml": collectorYaml("v1"),
    });
    repo.commit("edge v1");
    svc = await startTestService(
      { repo: repo.dir, webhookSecretFile: secretFile },
      { logger: log.logger },
    );
    service = svc.service;
    api = svc.api;
    opampUrl = svc.url;
    fleet = new SimulatedFleet({
      agents: 20,
      url: svc.wsUrl,
      attributes: { "host.role": "edge" },
      transport: "mixed", // 10 agents on WebSocket, 10 on plain HTTP
      failWhen: "BREAK-ME",
      applyMs: 20,
      heartbeatSeconds: 1,
    });
    await fleet.start();
  });

  after(async () => {
    await fleet?.stop();
    await svc?.close();
  });

  test("the first commit reaches every agent through the stages", async () => {
    const v1 = hashOf(collectorYaml("v1"));
    await fleet.until((s) => s.byHash[short(v1)] === 20, 30_000);
    await rolloutStatus(service, "completed");
    assert.equal(service.rollouts.status("edge")?.stable?.hash, v1);
  });

  test("a new commit rolls out stage by stage, and every agent reports it applied", async () => {
    const v2yaml = collectorYaml("v2");
    repo.write("groups/edge/collector.yaml", v2yaml).commit("edge v2");
    const v2 = hashOf(v2yaml);
    const seen = new Set<number>();
    const stages = service.rollouts.events.on("*", (n) =>
      seen.add((n as { stage?: number }).stage ?? -1),
    );
    await fleet.until((s) => s.byHash[short(v2)] === 20, 30_000);
    stages();
    assert.ok(seen.has(0) && seen.has(1) && seen.has(2), `stages seen: ${[...seen]}`);
    const stored = await service.opamp.store.load(fleet.agents[3]?.uid ?? "");
    assert.equal(stored?.reportedHash, v2);
  });

  test("the status branch holds every agent's applied hash, health and effective config", async () => {
    const v2 = hashOf(collectorYaml("v2"));
    const files = (t: StatusTree) =>
      fleet.agents.map((a) => t.get(`status/agents/edge/${a.uid}.yaml`));
    // The last stage's agents report APPLIED before the rollout completes: a flush between
    // the two commits them applied while the group still serves v1. Wait for both.
    const tree = await statusBranch(
      repo,
      (t) =>
        files(t).every(
          (f) =>
            get(f, "remoteConfig", "reportedHash") === v2 &&
            get(f, "remoteConfig", "status") === "APPLIED",
        ) && get(t.get("status/groups/edge.yaml"), "served", "configHash") === v2,
    );
    for (const f of files(tree)) {
      assert.equal(get(f, "remoteConfig", "status"), "APPLIED");
      assert.equal(get(f, "remoteConfig", "desiredHash"), v2);
      assert.equal(get(f, "drift"), false);
      assert.equal(get(f, "health", "healthy"), true);
      const content = get(f, "effectiveConfig", "files", "collector.yaml", "content");
      assert.match(JSON.stringify(content), /"v2"/);
    }
    assert.equal(get(tree.get("status/groups/edge.yaml"), "served", "configHash"), v2);
    assert.equal(get(tree.get("status/fleet.yaml"), "agents", "connected"), 20);
    assert.ok(
      statusLog(repo).some((m) => /^edge: \d+ applied/.test(m)),
      statusLog(repo).join("\n"),
    );
  });

  test("a config that makes agents fail is rolled back; agents run the stable config", async () => {
    const v2 = hashOf(collectorYaml("v2"));
    const bad = `${collectorYaml("v3")}# BREAK-ME\n`;
    repo.write("groups/edge/collector.yaml", bad).commit("edge v3 (breaks)");
    await fleet.until((s) => s.failed >= 1, 30_000);
    const ended = await rolloutStatus(service, "rolled-back");
    assert.match(ended.rollout?.endReason ?? "", /more than the 0 allowed/);
    assert.match(ended.rollout?.failures[0]?.error ?? "", /contains "BREAK-ME"/);
    const s = await fleet.until((x) => x.byHash[short(v2)] === 20, 30_000);
    assert.equal(s.byHash[short(hashOf(bad))] ?? 0, 0);
    const tree = await statusBranch(
      repo,
      (t) => get(t.get("status/groups/edge.yaml"), "rollout", "state") === "rolled-back",
    );
    const group = tree.get("status/groups/edge.yaml");
    // The group's served hash names what its agents are served (stable v2), everywhere.
    assert.equal(get(group, "served", "configHash"), v2, "status/groups/edge.yaml");
    assert.deepEqual(get(group, "served", "files"), ["collector.yaml"]);
    assert.equal(get(group, "rollout", "target", "hash"), hashOf(bad));
    assert.equal(get(tree.get("status/fleet.yaml"), "groups", "edge", "configHash"), v2);
    const viewed = (await (await fetch(`${api}/api/v1/groups/edge`)).json()) as {
      configHash: string;
      files: string[];
    };
    assert.equal(viewed.configHash, v2, "/api/v1/groups/edge");
    assert.deepEqual(viewed.files, ["collector.yaml"]);
    assert.equal(service.rollouts.status("edge")?.served?.hash, v2);
    assert.match(String(get(group, "rollout", "reason")), /more than the 0 allowed/);
    assert.match(String(get(group, "rollout", "failures", 0, "error")), /BREAK-ME/);
    // Configs no rollout can serve any more are pruned (v1); stable v2 and target v3 stay.
    assert.equal(service.configs.get(hashOf(collectorYaml("v1"))), undefined);
    assert.deepEqual(
      new Set(await svc.redis.redis.hkeys(`${svc.redis.prefix}:configs`)),
      new Set([v2, hashOf(bad)]),
    );
    const history = get(group, "history") as Array<{ state: string }>;
    assert.ok(
      history.some((h) => h.state === "completed"),
      JSON.stringify(history),
    );
    assert.ok(
      statusLog(repo).some((m) => /^edge@[0-9a-f]{7} rolled back: /.test(m)),
      statusLog(repo).join("\n"),
    );
  });

  test("an invalid commit is never served; validate reports the same errors; status records it", async () => {
    type Found = { file: string; line: number; code: string; severity: string };
    const stalledFindings = new Promise<Found[]>((resolve) =>
      service.sync?.on("stalled", (e) => resolve(e.findings as Found[])),
    );
    const stalled = stalledFindings.then((f) => f.filter((x) => x.severity === "error").length);
    repo
      .write(
        "groups/edge/collector.yaml",
        "service:\n  pipelines:\n    traces:\n      receivers: [nope]\n",
      )
      .commit("broken");
    assert.ok((await stalled) > 0);
    // The pull-request check on the same tree finds the same errors.
    let json = "";
    const out = new Writable({
      write(chunk, _enc, done) {
        json += String(chunk);
        done();
      },
    });
    assert.equal(await runValidate(repo.dir, { format: "json", strict: false }, out), 1);
    const key = (f: Found) => `${f.file}:${f.line} ${f.code}`;
    const errors = (list: Found[]) =>
      list
        .filter((f) => f.severity === "error")
        .map(key)
        .sort();
    assert.deepEqual(
      errors((JSON.parse(json) as { findings: Found[] }).findings),
      errors(await stalledFindings),
    );
    await new Promise((r) => setTimeout(r, 500));
    const s = fleet.summary();
    assert.equal(s.byHash[short(hashOf(collectorYaml("v2")))], 20);
    const broken = repo.head();
    const tree = await statusBranch(
      repo,
      (t) => get(t.get("status/fleet.yaml"), "validation", "result") === "failed",
    );
    assert.equal(get(tree.get("status/fleet.yaml"), "validation", "commit"), broken);
    assert.ok(
      statusLog(repo).some((m) => m.includes(`validation failed at ${broken.slice(0, 7)}`)),
      statusLog(repo).join("\n"),
    );
  });

  test("the admin API: health, readiness, metrics, agents, groups, rollout actions", async () => {
    assert.equal((await fetch(`${api}/healthz`)).status, 200);
    const ready = await fetch(`${api}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: object }).checks, {
      redis: { ok: true },
      git: { ok: true },
    });
    const metrics = await (await fetch(`${api}/metrics`)).text();
    assert.match(
      metrics,
      /opamp_gitops_agents\{group="edge",state="APPLIED",transport="websocket"\} 10/,
    );
    assert.match(
      metrics,
      /opamp_gitops_agents\{group="edge",state="APPLIED",transport="http"\} 10/,
    );
    const commits = /opamp_gitops_status_commits_total (\d+)/.exec(metrics);
    assert.ok(Number(commits?.[1]) >= 3, `status commits: ${commits?.[1]}`);
    assert.match(metrics, /opamp_gitops_status_commit_seconds_count \d+/);
    assert.match(metrics, /opamp_gitops_validation_failures_total 1/);
    // Process-wide: counted once serve started trimming (test/malloc-trim.test.ts).
    assert.match(metrics, /opamp_gitops_malloc_trim_total \d+/);
    assert.match(metrics, /opamp_gitops_malloc_trim_seconds_total [\d.e-]+/);
    const agents = (await (
      await fetch(`${api}/api/v1/agents?group=edge&state=connected`)
    ).json()) as Array<{ group: string; remoteConfig: { status: string } }>;
    assert.equal(agents.length, 20);
    assert.ok(agents.every((a) => a.group === "edge" && a.remoteConfig.status === "APPLIED"));
    const one = (await (await fetch(`${api}/api/v1/agents/${fleet.agents[0]?.uid}`)).json()) as {
      capabilities: string[];
    };
    assert.ok(one.capabilities.includes("AcceptsRemoteConfig"));
    assert.equal((await fetch(`${api}/api/v1/agents/not-a-uid`)).status, 400);
    const groups = (await (await fetch(`${api}/api/v1/groups`)).json()) as Array<{
      name: string;
      configHash: string;
    }>;
    assert.deepEqual(
      groups.map((g) => g.name),
      ["edge"],
    );
    const pause = await fetch(`${api}/api/v1/rollouts/edge/pause`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
    });
    assert.equal(pause.status, 409, "nothing in flight after the rollback");
    assert.equal(
      ((await pause.json()) as { error: { code: string } }).error.code,
      "ROLLOUT_NOT_IN_FLIGHT",
    );
    assert.equal(
      (
        await fetch(`${api}/api/v1/rollouts/nope/pause`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
        })
      ).status,
      404,
    );
  });

  test("POST /hooks/git: a bad signature is refused; a signed push triggers a fetch", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const bad = await fetch(`${api}/hooks/git`, {
      method: "POST",
      body,
      headers: { "X-Hub-Signature-256": "sha256=00" },
    });
    assert.equal(bad.status, 401);
    const signature = `sha256=${createHmac("sha256", "hook-secret").update(body).digest("hex")}`;
    const other = JSON.stringify({ ref: "refs/heads/feature" });
    const otherSig = `sha256=${createHmac("sha256", "hook-secret").update(other).digest("hex")}`;
    const ignored = await fetch(`${api}/hooks/git`, {
      method: "POST",
      body: other,
      headers: { "X-Hub-Signature-256": otherSig },
    });
    assert.equal(((await ignored.json()) as { triggered: boolean }).triggered, false);
    const good = await fetch(`${api}/hooks/git`, {
      method: "POST",
      body,
      headers: { "X-Hub-Signature-256": signature },
    });
    assert.equal(good.status, 202);
    const gitlab = await fetch(`${api}/hooks/git`, {
      method: "POST",
      body,
      headers: { "X-Gitlab-Token": "hook-secret" },
    });
    assert.equal(gitlab.status, 202);
  });

  test("an agent a dead replica left 'connected' is shown disconnected once stale", async () => {
    const uid = "01900000-0000-7000-8000-00000000dead";
    const state = emptyAgentState(uid, "websocket", Date.now() - STALE_CONNECTION_MS - 60_000);
    state.connected = true;
    await service.opamp.store.save(state, [], "dead-replica", true);
    await service.status?.reconcile([uid]);
    const tree = await statusBranch(repo, (t) =>
      [...t.keys()].some((p) => p.endsWith(`${uid}.yaml`)),
    );
    const file = [...tree].find(([p]) => p.endsWith(`${uid}.yaml`))?.[1];
    assert.equal(get(file, "connected"), false);
    assert.match(String(get(file, "lastDisconnected")), /^\d{4}-/);
  });

  test("what real supervisors and the Operator Bridge report reaches the status branch", async () => {
    // A supervisor's first message: its whole effective config under "" with no body yet
    // (protobuf decodes the absent bytes as an empty Array) and no content type.
    const uidOf = (a: TestAgent) =>
      Buffer.from(a.uid)
        .toString("hex")
        .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
    const description = {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
      nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: "unmatched" } }],
    };
    const supervisor = new TestAgent({ transport: "websocket", url: opampUrl });
    await supervisor.connect();
    await supervisor.send({
      agentDescription: description,
      capabilities: 0x1n | 0x4n,
      effectiveConfig: { configMap: { configMap: { "": {} } } },
    });
    const file = (t: StatusTree, a: TestAgent) =>
      t.get(`status/agents/_unassigned/${uidOf(a)}.yaml`);
    let tree = await statusBranch(repo, (t) => file(t, supervisor) !== undefined);
    assert.deepEqual(get(file(tree, supervisor), "effectiveConfig", "files", ""), {
      contentType: "",
      bytes: 0,
      content: null,
    });
    // Then the merged config: YAML with an empty content type, a secret in it.
    await supervisor.send({
      capabilities: 0x1n | 0x4n,
      effectiveConfig: {
        configMap: {
          configMap: {
            "": {
              body: Buffer.from(
                "extensions:\n  opamp:\n    server: {ws: {endpoint: 'ws://127.0.0.1:1/v1/opamp'}}\n" +
                  "exporters:\n  otlphttp:\n    endpoint: https://x\n    headers: {api-key: s3cr3t}\n",
              ),
            },
          },
        },
      },
    });
    // The Operator OpAMP Bridge: one whole CR per <namespace>/<name>, content type yaml.
    const bridge = new TestAgent({ transport: "websocket", url: opampUrl });
    await bridge.connect();
    await bridge.send({
      agentDescription: description,
      capabilities: 0x1n | 0x4n,
      effectiveConfig: {
        configMap: {
          configMap: {
            "observability/gateway": {
              contentType: "yaml",
              body: Buffer.from(
                "apiVersion: opentelemetry.io/v1beta1\nkind: OpenTelemetryCollector\n" +
                  "metadata: {name: gateway, namespace: observability}\n",
              ),
            },
          },
        },
      },
    });
    tree = await statusBranch(
      repo,
      (t) =>
        get(file(t, supervisor), "effectiveConfig", "files", "", "content") !== null &&
        file(t, bridge) !== undefined,
    );
    const merged = get(file(tree, supervisor), "effectiveConfig", "files", "");
    assert.equal(get(merged, "contentType"), "");
    assert.match(
      String(get(merged, "content", "exporters", "otlphttp", "headers", "api-key")),
      /^<redacted:[0-9a-f]{6}>$/,
    );
    assert.equal(
      get(merged, "content", "extensions", "opamp", "server", "ws", "endpoint"),
      "ws://127.0.0.1:1/v1/opamp",
    );
    const cr = get(file(tree, bridge), "effectiveConfig", "files", "observability/gateway");
    assert.equal(get(cr, "contentType"), "yaml");
    assert.equal(get(cr, "content", "metadata", "namespace"), "observability");
    supervisor.close();
    bridge.close();
  });

  test("a clean shutdown with agents connected logs no warning per agent", async () => {
    assert.ok(fleet.agents.length > 0);
    // An agent that never answers the server's close frame (its socket stops reading): the
    // server ends it after its grace period, while the rollouts can still record that.
    const placed = service.bridge?.groupOf.size ?? 0;
    const slow = new TestAgent({ transport: "websocket", url: opampUrl });
    await slow.connect();
    await slow.send({
      capabilities: 0x1n,
      agentDescription: {
        identifyingAttributes: [],
        nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: "edge" } }],
      },
    });
    await waitFor("the silent agent placed", () => (service.bridge?.groupOf.size ?? 0) > placed, {
      timeoutMs: 5000,
      intervalMs: 50,
    });
    assert.equal(service.bridge?.groupOf.size, placed + 1, "the silent agent joined edge");
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // WebSocket agents (HTTP agents stay "connected" until their liveness window passes).
    const connected = [...service.opamp.handler.live.values()].filter(
      (l) => l.conn.transport === "websocket",
    ).length;
    assert.equal(connected, 11);
    let disconnected = 0;
    service.opamp.events.on("disconnected", () => disconnected++);
    // When the OpAMP server says it closed, every agent's disconnect has been handled: none
    // reaches the rollouts after they closed.
    await service.opamp.close();
    assert.equal(disconnected, connected);
    await service.close();
    // The server ends the silent socket within its grace; any late write would warn by now.
    await new Promise((r) => setTimeout(r, 1500));
    const warnings = log.lines.filter((l) => (l.level as number) >= 40);
    assert.deepEqual(
      warnings.filter((l) => /rollout update failed|shutdown step/.test(String(l.msg))),
      [],
    );
    slow.close();
  });
});
