/**
 * Agent-aware checks end to end (issue 14): simulated agents report their AvailableComponents
 * (hash, then the map when asked). A commit whose config uses a component type part of the
 * group lacks rolls out to the rest only: the lacking agents stay on the stable config, count
 * neither as members nor as failures, and are listed (count and examples) in the admin API,
 * `rollout status` and the status branch's group file. A commit that every agent of the group
 * lacks a type for is a validation error: stalled, never rolled out.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { formatRolloutStatus } from "../../src/commands/rollout.js";
import { configHash } from "../../src/config-hash.js";
import { SimulatedFleet } from "../../src/opamp/index.js";
import type { Service } from "../../src/service/service.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor as wait } from "../helpers/wait.js";
import { plan } from "../plan/helpers.js";
import { get, git, readStatusTree, type StatusTree } from "../status/helpers.js";
import { TestRepo } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 50, pause: 0s}, {percent: 100}]
  applyTimeout: 10s
  maxFailures: 0
heartbeatInterval: 1s
`;
const config = (exporter: string, label: string) => `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
processors:
  batch:
    timeout: 5s
exporters:
  debug: {}
${exporter}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [${exporter ? `debug, ${exporter.split(":")[0]?.trim()}` : "debug"}]
# ${label}
`;
const V1 = config("", "v1");
const V2 = config("  otlphttp/backend:\n    endpoint: https://otlp.example.com", "v2");
const V3 = config("  kafka:\n    brokers: [kafka:9092]", "v3");
const hashOf = (yaml: string) =>
  configHash([{ name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) }]);
const short = (h: string) => h.slice(0, 12);

const FULL = {
  receivers: ["otlp"],
  processors: ["batch"],
  exporters: ["debug", "otlphttp"],
  extensions: ["health_check"],
};
const LEAN = { receivers: ["otlp"], processors: ["batch"], exporters: ["debug"] };

/** Reads until `ok` holds (test/helpers/wait.ts, 30 s). */
function waitFor<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean) {
  return wait(
    what,
    async () => {
      const v = await read();
      return ok(v) ? { v } : undefined;
    },
    // A read may fail while waiting: the status branch exists only after the writer's first
    // commit, which a loaded machine may not have made yet.
    { timeoutMs: 30_000, intervalMs: 75, ignoreErrors: true },
  ).then((r) => r.v);
}

interface IncompatibleView {
  count: number;
  examples: { uid: string; missing: string[] }[];
}

describe("agents whose build lacks a component type of their group's config", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let full: SimulatedFleet;
  let lean: SimulatedFleet;
  let api = "";
  const log = capturedLogger("info");

  before(async () => {
    repo = new TestRepo();
    repo.writeAll({ "groups/edge/group.yaml": GROUP, "groups/edge/collector.yaml": V1 });
    repo.commit("edge v1");
    svc = await startTestService({ repo: repo.dir }, { logger: log.logger });
    service = svc.service;
    api = svc.api;
    const common = {
      url: svc.wsUrl,
      attributes: { "host.role": "edge" },
      transport: "mixed" as const,
      applyMs: 20,
      heartbeatSeconds: 1,
    };
    full = new SimulatedFleet({ ...common, agents: 6, components: FULL });
    lean = new SimulatedFleet({ ...common, agents: 3, components: LEAN });
    await full.start();
    await lean.start();
  });

  after(async () => {
    await full?.stop();
    await lean?.stop();
    await svc?.close();
  });

  test("a config every agent can run reaches every agent", async () => {
    await full.until((s) => s.byHash[short(hashOf(V1))] === 6, 30_000);
    await lean.until((s) => s.byHash[short(hashOf(V1))] === 3, 30_000);
    // Each agent was asked for its map once it sent the hash, and it is stored.
    const stored = await service.opamp.store.load(lean.agents[0]?.uid ?? "");
    assert.deepEqual(
      Object.keys(stored?.availableComponents?.components?.exporters?.subComponentMap ?? {}),
      ["debug"],
    );
    await waitFor(
      "v1 completed",
      () => service.rollouts.status("edge"),
      (s) => s?.rollout?.status === "completed",
    );
  });

  test("agents lacking a type stay on stable, the rollout completes for the rest", async () => {
    repo.write("groups/edge/collector.yaml", V2).commit("edge v2: otlphttp");
    const v1 = hashOf(V1);
    const v2 = hashOf(V2);
    await full.until((s) => s.byHash[short(v2)] === 6, 30_000);
    const st = await waitFor(
      "v2 completed",
      () => service.rollouts.status("edge"),
      (s) => s?.rollout?.target.hash === v2 && s.rollout.status === "completed",
    );
    assert.equal(st?.rollout?.members, 6, "the lacking agents are not members");
    assert.equal(st?.rollout?.failed, 0, "nor failures");
    assert.equal(st?.stable?.hash, v2);
    // Given time to be offered something, the lacking agents still run v1.
    await new Promise((r) => setTimeout(r, 1500));
    for (const a of lean.agents) assert.equal(a.runningHash, v1, `${a.uid} stays on v1`);
    assert.equal(lean.summary().failed, 0);

    const leanUids = lean.agents.map((a) => a.uid).sort();
    const rollout = (await (await fetch(`${api}/api/v1/rollouts/edge`)).json()) as {
      incompatible: IncompatibleView;
    };
    assert.equal(rollout.incompatible.count, 3);
    assert.deepEqual(rollout.incompatible.examples.map((e) => e.uid).sort(), leanUids);
    for (const e of rollout.incompatible.examples)
      assert.deepEqual(e.missing, ["exporters/otlphttp"]);
    const group = (await (await fetch(`${api}/api/v1/groups/edge`)).json()) as {
      incompatible: IncompatibleView;
    };
    assert.equal(group.incompatible.count, 3);
    const text = formatRolloutStatus(rollout as never);
    assert.match(text, /incompatible 3 agents/);
    assert.match(text, new RegExp(`${leanUids[0]} lacks exporters/otlphttp`));

    const gitdir = join(repo.dir, ".git");
    const tree = await waitFor(
      "group file lists them",
      () => readStatusTree(gitdir, "opamp-status"),
      (t: StatusTree) => get(t.get("status/groups/edge.yaml"), "incompatible", "count") === 3,
    );
    const examples = get(tree.get("status/groups/edge.yaml"), "incompatible", "examples");
    assert.deepEqual(
      (examples as { instanceUid: string }[]).map((e) => e.instanceUid).sort(),
      leanUids,
    );
    // Their own files say they are served nothing new: desired is not v2.
    for (const uid of leanUids) {
      const f = tree.get(`status/agents/edge/${uid}.yaml`);
      assert.notEqual(get(f, "remoteConfig", "desiredHash"), v2, uid);
    }
    assert.ok(git(gitdir, "log", "--format=%s", "opamp-status").length > 0);
  });

  test("plan --api-url lists the agents a change would leave incompatible", async () => {
    const main = repo.git("rev-parse", "--abbrev-ref", "HEAD").trim();
    repo.git("checkout", "-q", "-b", "pr-kafka");
    repo.write("groups/edge/collector.yaml", V3).commit("kafka (nobody has it)");
    repo.git("checkout", "-q", main);
    const refused = await plan({ repo: repo.dir, base: main, head: "pr-kafka", apiUrl: api });
    assert.equal(refused.code, 1, refused.out);
    const edge = refused.plan?.groups.find((g) => g.name === "edge");
    assert.equal(edge?.incompatible.count, 9);
    assert.equal(edge?.incompatible.known, 9);
    assert.equal(edge?.incompatible.all, true);
    assert.deepEqual(edge?.incompatible.missing, { "exporters/kafka": 9 });
    assert.ok(edge?.findings.some((f) => f.code === "AGENTS_INCOMPATIBLE"));

    // Back to v1 (no otlphttp): every agent can run it, nobody is listed.
    repo.git("checkout", "-q", "-b", "pr-v1");
    repo.write("groups/edge/collector.yaml", V1).commit("back to v1");
    repo.git("checkout", "-q", main);
    const fine = await plan({ repo: repo.dir, base: main, head: "pr-v1", apiUrl: api });
    assert.equal(fine.code, 0, fine.out);
    const edge1 = fine.plan?.groups.find((g) => g.name === "edge");
    assert.equal(edge1?.incompatible.count, 0);
    assert.equal(edge1?.incompatible.known, 9);

    // Text output names them.
    const text = await plan({
      repo: repo.dir,
      base: main,
      head: "pr-kafka",
      apiUrl: api,
      format: "text",
    });
    assert.match(text.out, /incompatible 9 of 9 agents .*exporters\/kafka \(9\)/);
  });

  test("a config no agent of the group can run is a validation error, not a rollout", async () => {
    const v2 = hashOf(V2);
    const commit = repo.write("groups/edge/collector.yaml", V3).commit("edge v3: kafka");
    const stalled = await waitFor(
      "stalled",
      () => service.sync?.status.stalled,
      (s) => Boolean(s?.findings.some((f) => f.code === "AGENTS_INCOMPATIBLE")),
    );
    const finding = stalled?.findings.find((f) => f.code === "AGENTS_INCOMPATIBLE");
    assert.equal(finding?.severity, "error");
    assert.equal(finding?.file, "groups/edge/collector.yaml");
    assert.equal(finding?.line, 11, "the line that defines kafka");
    assert.match(finding?.message ?? "", /every agent of group "edge" \(9\).*exporters\/kafka/);
    assert.equal(stalled?.commit, commit);
    const st = service.rollouts.status("edge");
    assert.equal(st?.rollout?.target.hash, v2, "no rollout started");
    for (const a of full.agents) assert.equal(a.runningHash, v2);
    const gitdir = join(repo.dir, ".git");
    await waitFor(
      "validation failure on the status branch",
      () => readStatusTree(gitdir, "opamp-status"),
      (t: StatusTree) =>
        get(t.get("status/groups/edge.yaml"), "validation", "result") === "failed" &&
        JSON.stringify(get(t.get("status/groups/edge.yaml"), "validation")).includes(
          "AGENTS_INCOMPATIBLE",
        ),
    );
  });
});
