/**
 * A group's whole bundle with independent peers: opamp-go agents (test/interop/go, the
 * library's own package syncer) over WebSocket and plain HTTP against a real `serve` loop.
 *
 * - own telemetry from group.yaml, its header resolved from the service's environment;
 * - a package served by the service itself (--package-dir), downloaded, verified, installed;
 * - a commit that changes only telemetry starts a rollout of its own;
 * - a package whose file does not match its sha256 fails the install: the rollout is
 *   rolled back with the agent's error;
 * - a secret reference the service cannot resolve stalls the commit with a clear finding;
 * - `agents restart --group` reaches both agents (WebSocket at once, HTTP on its next poll).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Service } from "../../src/service/service.js";
import {
  buildGoProgram,
  findGo,
  type GoEvent,
  type GoProcess,
  startGoProgram,
} from "../helpers/go-program.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { get, git, readStatusTree } from "../status/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const go = findGo();
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const PLUGIN_V1 = Buffer.from("plugin v1: the real bytes\n");
const PLUGIN_V2 = Buffer.from("plugin v2: what group.yaml promises\n");
const TOKEN_ENV = "OPAMP_GITOPS_SECRET_TEST_OWN_TELEMETRY_TOKEN";

function groupYaml(opts: { endpoint: string; packages: string; ref?: string }): string {
  return `selector:
  match: {service.name: interop-go}
rollout:
  stages: [{percent: 100}]
  applyTimeout: 60s
  maxFailures: 0
  onFailure: rollback
heartbeatInterval: 1s
telemetry:
  metrics:
    endpoint: ${opts.endpoint}
    headers: {Authorization: "Bearer \${env:${opts.ref ?? TOKEN_ENV}}"}
  logs: {endpoint: "https://logs.example.com/v1/logs"}
packages:
${opts.packages}
`;
}

async function until<T>(what: string, read: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("bundles with opamp-go agents (own telemetry, packages, restart)", {
  skip: "reason" in go ? go.reason : false,
}, () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let corrupt: Server;
  let corruptUrl = "";
  let apiPort = 0;
  const agents: Record<"ws" | "http", GoProcess | undefined> = { ws: undefined, http: undefined };
  const dirs = { ws: "", http: "" };
  const log = capturedLogger("info");

  before(async () => {
    if ("reason" in go) return;
    const bin = join(tempDir("opamp-gitops-go-"), "interop");
    await buildGoProgram(go.go, bin);
    process.env[TOKEN_ENV] = "s3cret-from-env";
    // Serves bytes that do not match the sha256 group.yaml declares for them.
    corrupt = createServer((_req, res) => res.end("tampered bytes\n"));
    await new Promise<void>((r) => corrupt.listen(0, "127.0.0.1", r));
    corruptUrl = `http://127.0.0.1:${(corrupt.address() as AddressInfo).port}/plugin-v2.bin`;

    repo = new TestRepo();
    repo.writeAll({
      "groups/edge/group.yaml": groupYaml({
        endpoint: "https://metrics.example.com/v1/metrics",
        packages: `  plugin: {version: "1.0.0", sha256: ${sha(PLUGIN_V1)}}`,
      }),
      "groups/edge/collector.yaml": collectorYaml("v1"),
    });
    repo.commit("edge v1 with telemetry and a package");
    svc = await startTestService(
      { repo: repo.dir },
      { logger: log.logger, advertise: true, packages: { "plugin-v1.bin": PLUGIN_V1 } },
    );
    service = svc.service;
    apiPort = svc.apiPort;
    for (const t of ["ws", "http"] as const) {
      dirs[t] = join(tempDir(`opamp-gitops-agent-${t}-`), "packages");
      mkdirSync(dirs[t]);
      agents[t] = startGoProgram(bin, [
        "-url",
        svc.url,
        "-transport",
        t,
        "-heartbeat",
        "1s",
        "-own-telemetry",
        "-packages",
        dirs[t],
        "-restart",
        "-stay",
        "-timeout",
        "600s",
      ]);
    }
  });

  after(async () => {
    for (const a of Object.values(agents)) await a?.stop();
    await svc?.close();
    await new Promise((r) => corrupt?.close(r));
    delete process.env[TOKEN_ENV];
  });

  const each = () => (["ws", "http"] as const).map((t) => [t, agents[t] as GoProcess] as const);
  const rollout = () => service.rollouts.status("edge")?.rollout;

  test("both agents get their own telemetry, with the header resolved on the service", async () => {
    for (const [t, a] of each()) {
      const metrics = await a.waitFor(
        (e) => e.event === "own_telemetry" && e.signal === "metrics",
        60_000,
        `${t} own metrics`,
      );
      assert.equal(metrics.endpoint, "https://metrics.example.com/v1/metrics");
      assert.deepEqual(metrics.headers, { Authorization: "Bearer s3cret-from-env" });
      await a.waitFor((e) => e.event === "own_telemetry" && e.signal === "logs", 10_000);
    }
  });

  test("both agents download the package from the service, verify and install it", async () => {
    for (const [t, a] of each()) {
      const synced = await a.waitFor(
        (e) => e.event === "packages_synced",
        90_000,
        `${t} packages synced`,
      );
      assert.deepEqual(
        (synced.statuses as Record<string, unknown>).plugin,
        { status: "PackageStatusEnum_Installed", version: "1.0.0", error: "" },
        JSON.stringify(synced),
      );
      assert.deepEqual(readFileSync(join(dirs[t], "plugin")), PLUGIN_V1);
    }
    const done = await until("rollout completed", () =>
      rollout()?.status === "completed" ? rollout() : undefined,
    );
    const group = service.sync?.current?.groups.get("edge");
    assert.equal(done.target.hash, group?.bundleId);
    assert.notEqual(group?.bundleId, group?.configHash, "a bundle with telemetry has its own id");
  });

  test("the status branch and the API show each part: config, own telemetry, packages", async () => {
    const group = service.sync?.current?.groups.get("edge");
    const uids = each().map(
      ([, a]) => a.events.find((e) => e.event === "start")?.instanceUid as string,
    );
    const gitdir = join(repo.dir, ".git");
    const file = (tree: Map<string, unknown>, uid: string) =>
      tree.get(`status/agents/edge/${uid}.yaml`);
    // Both last reports must have reached the branch: the helper syncs packages while its
    // config is APPLYING (200 ms), so "installed" next to APPLYING is a true state a flush may
    // commit, and the initial rollout completed before the agents joined (no barrier).
    const tree = await until("status files with packages installed and config applied", () => {
      if (!git(gitdir, "for-each-ref", "refs/heads/opamp-status").trim()) return undefined;
      const t = readStatusTree(gitdir, "opamp-status");
      return uids.every(
        (u) =>
          get(file(t, u), "bundle", "packages", "packages", "plugin", "status") === "installed" &&
          get(file(t, u), "remoteConfig", "status") === "APPLIED",
      )
        ? t
        : undefined;
    });
    for (const uid of uids) {
      const f = file(tree, uid);
      assert.equal(get(f, "remoteConfig", "desiredHash"), group?.configHash);
      assert.equal(get(f, "drift"), false);
      assert.equal(get(f, "bundle", "id"), group?.bundleId);
      assert.equal(get(f, "bundle", "status"), "APPLIED");
      assert.deepEqual(get(f, "bundle", "parts"), {
        config: "APPLIED",
        telemetry: "APPLIED",
        packages: "APPLIED",
      });
      assert.equal(get(f, "bundle", "packages", "packages", "plugin", "version"), "1.0.0");
      // The resolved header never reaches Git.
      assert.doesNotMatch(JSON.stringify(f), /s3cret-from-env/);
      const view = (await (
        await fetch(`http://127.0.0.1:${apiPort}/api/v1/agents/${uid}`)
      ).json()) as {
        bundle?: unknown;
      };
      assert.equal(get(view.bundle, "packages", "packages", "plugin", "status"), "installed");
    }
    const log = git(gitdir, "log", "-p", "--all");
    assert.doesNotMatch(log, /s3cret-from-env/);
  });

  test("a commit that changes only telemetry starts a rollout, and agents get the new offer", async () => {
    const before = rollout()?.id;
    repo.write(
      "groups/edge/group.yaml",
      groupYaml({
        endpoint: "https://metrics-2.example.com/v1/metrics",
        packages: `  plugin: {version: "1.0.0", sha256: ${sha(PLUGIN_V1)}}`,
      }),
    );
    repo.commit("edge: new own-metrics endpoint");
    await until("a new rollout", () => (rollout()?.id !== before ? true : undefined));
    for (const [t, a] of each())
      await a.waitFor(
        (e: GoEvent) =>
          e.event === "own_telemetry" && e.endpoint === "https://metrics-2.example.com/v1/metrics",
        60_000,
        `${t} new endpoint`,
      );
    await until("rollout completed", () => (rollout()?.status === "completed" ? true : undefined));
  });

  test("a package whose file does not match its sha256 fails to install and is rolled back", async () => {
    repo.write(
      "groups/edge/group.yaml",
      groupYaml({
        endpoint: "https://metrics-2.example.com/v1/metrics",
        packages: `  plugin: {version: "2.0.0", sha256: ${sha(PLUGIN_V2)}, url: "${corruptUrl}"}`,
      }),
    );
    repo.commit("edge: plugin 2.0.0");
    const ended = await until(
      "rolled back",
      () => (rollout()?.status === "rolled-back" ? rollout() : undefined),
      90_000,
    );
    assert.match(ended.failures[0]?.error ?? "", /package plugin 2\.0\.0: .*sha256 mismatch/);
    // The stable bundle is offered again: the agents keep (or get back) plugin 1.0.0.
    // The first failure rolls back (maxFailures 0): an agent that had not polled yet may
    // never see the bad offer. Whoever saw it reports the library's install failure.
    const failedOn = ended.failures[0]?.uid;
    for (const [t, a] of each()) {
      const start = a.events.find((e) => e.event === "start");
      if (start?.instanceUid === failedOn) {
        const failed = await a.waitFor(
          (e) =>
            e.event === "packages_synced" &&
            JSON.stringify(e.statuses).includes("PackageStatusEnum_InstallFailed"),
          30_000,
          `${t} failed install`,
        );
        assert.match(JSON.stringify(failed), /sha256 mismatch/);
      }
      // Nothing was replaced: the agents keep plugin 1.0.0 (the stable bundle's version).
      assert.deepEqual(readFileSync(join(dirs[t], "plugin")), PLUGIN_V1);
    }
    assert.ok(
      each().some(([, a]) =>
        a.events.some((e) => e.event === "start" && e.instanceUid === failedOn),
      ),
      `failure from an unknown agent ${failedOn}`,
    );
    const stable = service.rollouts.status("edge")?.stable?.hash;
    assert.equal(ended.from?.hash, stable);
  });

  test("a secret reference the service cannot resolve stalls the commit with a clear finding", async () => {
    repo.write(
      "groups/edge/group.yaml",
      groupYaml({
        endpoint: "https://metrics-3.example.com/v1/metrics",
        packages: `  plugin: {version: "1.0.0", sha256: ${sha(PLUGIN_V1)}}`,
        ref: "OPAMP_GITOPS_SECRET_TEST_UNSET_VARIABLE",
      }),
    );
    const commit = repo.commit("edge: a token nobody set");
    const stalled = await until("stalled", () =>
      service.sync?.status.stalled?.commit === commit ? service.sync.status.stalled : undefined,
    );
    const f = stalled.findings.find((x) => x.code === "SECRET_REF_UNRESOLVED");
    assert.ok(f, JSON.stringify(stalled.findings));
    assert.equal(f.file, "groups/edge/group.yaml");
    assert.ok(f.line > 1);
    assert.match(f.message, /OPAMP_GITOPS_SECRET_TEST_UNSET_VARIABLE is not set/);
  });

  test("agents restart --group sends RESTART to both agents and records who asked", async () => {
    const api = `http://127.0.0.1:${apiPort}`;
    const res = await fetch(`${api}/api/v1/groups/edge/restart`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Opamp-Gitops-Actor": "alice@laptop" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    const rows = (await res.json()) as Array<{ result: string }>;
    assert.deepEqual(rows.map((r) => r.result).sort(), ["queued", "sent"]);
    for (const [t, a] of each())
      await a.waitFor(
        (e) => e.event === "command" && e.type === "CommandType_Restart",
        30_000,
        `${t} restart`,
      );
    assert.ok(
      log.lines.some(
        (l) => l.msg === "agent restart requested" && /alice@laptop/.test(String(l.by)),
      ),
    );
    const gitdir = join(repo.dir, ".git");
    const uid = agents.ws?.events.find((e) => e.event === "start")?.instanceUid as string;
    const recorded = await until("the restart on the status branch", () => {
      const f = readStatusTree(gitdir, "opamp-status").get(`status/agents/edge/${uid}.yaml`);
      return get(f, "lastCommand") ? f : undefined;
    });
    assert.equal(get(recorded, "lastCommand", "type"), "restart");
    // Like every recorded actor, it passes the redactor (which hides the user part).
    assert.match(String(get(recorded, "lastCommand", "by")), /^api:.+@laptop via 127\.0\.0\.1$/);
    assert.equal(get(recorded, "lastCommand", "result"), "sent");
  });
});
