/**
 * The sync loop end to end on real repositories: desired state and hash provenance across
 * commits, reuse of unchanged groups, stalled commits, retries with backoff for an
 * unreachable remote, rewritten history, coalesced triggers, restarts.
 */
import assert from "node:assert/strict";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FleetSync, type FleetSyncOptions } from "../../src/sync/fleet-sync.js";
import type { FleetSyncEvents } from "../../src/sync/sync-events.js";
import type { RepositorySnapshot } from "../../src/validate/model.js";
import { deferred } from "../helpers/teardown.js";
import { collectorYaml, fleetFiles, groupFiles, groupYaml } from "./helpers/fleet.js";
import { GitHttpServer, httpBackendPath, unreachableUrl } from "./helpers/git-http-server.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "./helpers/git-repo.js";
import { ValidationCache, validateSnapshot } from "./helpers/validator.js";

const defer = deferred();

const dirs: string[] = [];
after(() => cleanup(...dirs));

function repo(): TestRepo {
  const r = new TestRepo();
  dirs.push(r.dir);
  return r;
}
function dir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

/** A FleetSync with the real validator, recording every event. */
function sync(options: Partial<FleetSyncOptions> & { repo: string }) {
  const validations = { count: 0 };
  const cache = new ValidationCache();
  const s = new FleetSync({
    pollIntervalMs: 0,
    validate: (snapshot: RepositorySnapshot) => {
      validations.count++;
      return validateSnapshot(snapshot, { cache });
    },
    ...options,
  });
  const events: Array<{ name: keyof FleetSyncEvents; event: unknown }> = [];
  for (const name of [
    "headChanged",
    "updated",
    "stalled",
    "fetchFailed",
    "recovered",
    "conflict",
    "persistFailed",
  ] as const)
    s.on(name, (event) => events.push({ name, event }));
  const of = <K extends keyof FleetSyncEvents>(name: K) =>
    events.filter((e) => e.name === name).map((e) => e.event as FleetSyncEvents[K]);
  return { s, events, of, validations };
}

/** The next `name` event for which `pred` holds. */
function nextEvent<K extends keyof FleetSyncEvents>(
  s: FleetSync,
  name: K,
  pred: (e: FleetSyncEvents[K]) => boolean = () => true,
) {
  return new Promise<FleetSyncEvents[K]>((resolve) => {
    const off = s.on(name, (e) => {
      if (pred(e)) {
        off();
        resolve(e);
      }
    });
  });
}

describe("FleetSync on a local repository", () => {
  test("examples/repo, committed under --path, is served whole with no error or warning", async () => {
    const r = repo();
    cpSync(
      fileURLToPath(new URL("../../../examples/repo", import.meta.url)),
      join(r.dir, "fleet"),
      {
        recursive: true,
      },
    );
    r.write("README.md", "monorepo\n").commit();
    const { s, of } = sync({ repo: r.dir, path: "fleet" });
    const outcome = await s.start();
    assert.equal(outcome.result, "updated", JSON.stringify(of("stalled")[0]?.findings));
    assert.deepEqual(
      [...(s.current?.groups.keys() ?? [])],
      ["edge", "gateway", "k8s-bridge", "k8s-pool"],
    );
    assert.deepEqual(s.current?.warnings, []);
    for (const g of s.current?.groups.values() ?? []) {
      assert.ok(g.files.length > 0);
      assert.equal(g.hashCommit, r.head());
    }
    await s.stop();
  });

  test("a valid commit becomes the desired state; agents are matched to groups", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge", { match: { "service.name": "otelcol", env: "edge" } }))
      .writeAll(groupFiles("gateway", { match: { "service.name": "otelcol" }, priority: -1 }))
      .commit();
    const { s, of } = sync({ repo: r.dir });
    const outcome = await s.start();
    assert.equal(outcome.result, "updated");
    const state = s.current;
    assert.ok(state);
    assert.equal(state.commit, r.head());
    assert.deepEqual([...state.groups.keys()], ["edge", "gateway"]);
    const edge = state.groups.get("edge");
    assert.equal(edge?.hashCommit, r.head());
    assert.equal(edge?.files[0]?.name, "collector.yaml");
    assert.equal(edge?.files[0]?.contentType, "text/yaml");
    assert.match(edge?.configHash ?? "", /^[0-9a-f]{64}$/);
    assert.deepEqual(of("updated")[0]?.changes.added, ["edge", "gateway"]);
    assert.equal(
      s.assign(
        new Map([
          ["service.name", "otelcol"],
          ["env", "edge"],
        ]),
      ).group,
      "edge",
    );
    assert.equal(s.assign(new Map([["service.name", "otelcol"]])).desired?.name, "gateway");
    assert.deepEqual(s.assign(new Map([["service.name", "other"]])), {});
    await s.stop();
  });

  test("provenance: an unchanged hash keeps the commit that introduced it", async () => {
    const r = repo();
    r.writeAll(groupFiles("a")).writeAll(groupFiles("b")).commit("c1");
    const c1 = r.head();
    const { s, of } = sync({ repo: r.dir });
    await s.start();

    r.write("groups/b/collector.yaml", collectorYaml("b-v2"));
    const c2 = r.commit("c2: b changes");
    const o2 = await s.trigger();
    assert.equal(o2.result, "updated");
    assert.equal(s.current?.groups.get("a")?.hashCommit, c1);
    assert.equal(s.current?.groups.get("b")?.hashCommit, c2);
    assert.deepEqual(of("updated")[1]?.changes.hashChanged, ["b"]);

    // Only a's group.yaml changes (priority): same files, same hash, same provenance.
    r.write("groups/a/group.yaml", groupYaml({ match: { "service.name": "a" }, priority: 5 }));
    r.commit("c3: a priority");
    await s.trigger();
    assert.equal(s.current?.groups.get("a")?.hashCommit, c1);
    assert.equal(s.current?.groups.get("a")?.priority, 5);
    assert.deepEqual(of("updated")[2]?.changes.hashChanged, []);
    assert.deepEqual(of("updated")[2]?.changes.settingsChanged, ["a"]);

    // b goes back to its first content: the hash is c1's again, but introduced anew by c4.
    r.write("groups/b/collector.yaml", collectorYaml("b"));
    const c4 = r.commit("c4: b reverted");
    await s.trigger();
    assert.equal(s.current?.groups.get("b")?.hashCommit, c4);
    await s.stop();
  });

  test("a commit that changes one group of 50 re-reads that group only", async () => {
    const r = repo();
    r.writeAll(fleetFiles(50)).commit();
    const { s, of } = sync({ repo: r.dir });
    await s.start();
    assert.equal(of("updated")[0]?.read?.groupsRead, 50);
    r.write("groups/g0007/collector.yaml", collectorYaml("changed"));
    r.commit();
    await s.trigger();
    const read = of("updated")[1]?.read;
    assert.equal(read?.groupsRead, 1);
    assert.equal(read?.groupsReused, 49);
    assert.equal(read?.blobsRead, 2, "group.yaml and collector.yaml of the changed group");
    assert.deepEqual(of("updated")[1]?.changes.hashChanged, ["g0007"]);
    await s.stop();
  });

  test("an invalid commit is stalled: never served, every finding reported, the last valid state kept", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit("good");
    const good = r.head();
    const { s, of } = sync({ repo: r.dir });
    await s.start();

    r.write("groups/edge/group.yaml", "priority: 1\n").write(
      "groups/broken/collector.yaml",
      "a: 1\n",
    );
    const bad = r.commit("bad");
    const outcome = await s.trigger();
    assert.equal(outcome.result, "stalled");
    const stalled = of("stalled")[0];
    assert.equal(stalled?.commit, bad);
    assert.equal(stalled?.serving, good);
    assert.ok((stalled?.errors ?? 0) >= 2, "both broken groups are reported");
    const files = new Set(stalled?.findings.map((f) => f.file));
    assert.ok(files.has("groups/edge/group.yaml"));
    assert.ok([...files].some((f) => f === "groups/broken" || f.startsWith("groups/broken/")));
    for (const f of stalled?.findings ?? []) {
      assert.ok(f.line >= 1 && f.column >= 1 && f.code && f.message);
    }
    assert.equal(s.current?.commit, good);
    assert.equal(s.status.stalled?.commit, bad);
    assert.equal(s.status.serving, good);

    // Not retried: the same head is judged once.
    assert.equal((await s.trigger()).result, "unchanged");
    assert.equal(of("stalled").length, 1);

    r.writeAll(groupFiles("edge")).remove("groups/broken");
    const fixed = r.commit("fixed");
    assert.equal((await s.trigger()).result, "updated");
    assert.equal(s.current?.commit, fixed);
    assert.equal(s.status.stalled, undefined);
    await s.stop();
  });

  test("an exporter no file defines stalls the commit before rollout; config.partial: true serves it", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit("good");
    const good = r.head();
    const { s, of } = sync({ repo: r.dir });
    await s.start();

    // The README's example: a known exporter type, named by a pipeline, defined nowhere.
    const undefinedExporter = collectorYaml("edge").replace(
      "exporters: [otlphttp, debug]",
      "exporters: [debug, otlp/tempo]",
    );
    r.write("groups/edge/collector.yaml", undefinedExporter);
    const bad = r.commit("exporter defined nowhere");
    assert.equal((await s.trigger()).result, "stalled");
    const f = of("stalled")[0]?.findings.find((x) => x.code === "OTELCOL_UNDEFINED_COMPONENT");
    assert.equal(f?.severity, "error");
    assert.equal(f?.file, "groups/edge/collector.yaml");
    assert.match(f?.message ?? "", /exporter "otlp\/tempo", which is not defined/);
    assert.equal(of("stalled")[0]?.commit, bad);
    assert.equal(s.current?.commit, good);

    r.write(
      "groups/edge/group.yaml",
      `${groupYaml({ match: { "service.name": "edge" } })}config:\n  partial: true\n`,
    );
    const partial = r.commit("the agent's own config defines otlp/tempo");
    assert.equal((await s.trigger()).result, "updated");
    assert.equal(s.current?.commit, partial);
    await s.stop();
  });

  test("a symlink in a group folder stalls the commit with SYNC_SYMLINK_NOT_FOLLOWED", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit();
    const { s, of } = sync({ repo: r.dir });
    await s.start();
    r.symlink("groups/edge/extra.yaml", "/etc/hostname").commit();
    assert.equal((await s.trigger()).result, "stalled");
    const f = of("stalled")[0]?.findings.find((x) => x.code === "SYNC_SYMLINK_NOT_FOLLOWED");
    assert.equal(f?.file, "groups/edge/extra.yaml");
    assert.equal(f?.severity, "error");
    await s.stop();
  });

  test("two groups with the same selector at equal priority: a static warning and a runtime conflict", async () => {
    const r = repo();
    const same = { match: { "service.name": "otelcol" } };
    r.writeAll(groupFiles("blue", same)).writeAll(groupFiles("green", same)).commit();
    const { s, of } = sync({ repo: r.dir });
    await s.start();
    const warning = s.current?.warnings.find((w) => w.code === "SELECTOR_CONFLICT");
    assert.ok(warning, "static warning");
    assert.equal(warning.file, "groups/green/group.yaml");
    assert.equal(warning.line, 1);
    assert.deepEqual(warning.data?.groups, ["blue", "green"]);
    assert.match(
      warning.message,
      /"blue", "green" have the same selector at priority 0.*joins "blue"/,
    );

    const attrs = new Map([["service.name", "otelcol"]]);
    assert.deepEqual(s.assign(attrs, "uid-1").conflict, ["blue", "green"]);
    assert.equal(s.assign(attrs, "uid-2").group, "blue");
    const conflicts = of("conflict");
    assert.equal(conflicts.length, 1, "announced once per tie set and state");
    assert.deepEqual(conflicts[0], {
      groups: ["blue", "green"],
      group: "blue",
      commit: r.head(),
      instanceUid: "uid-1",
    });
    await s.stop();
  });

  test("a rewritten history is reported on headChanged and the new head is served", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit("one");
    const one = r.head();
    r.write("groups/edge/collector.yaml", collectorYaml("two"));
    const two = r.commit("two");
    const { s, of } = sync({ repo: r.dir });
    await s.start();
    r.git("reset", "-q", "--hard", one);
    r.write("groups/edge/collector.yaml", collectorYaml("three"));
    const three = r.commit("three");
    assert.equal((await s.trigger()).result, "updated");
    const head = of("headChanged")[1];
    assert.deepEqual(head, {
      commit: three,
      previous: two,
      historyRewritten: true,
      fetched: false,
    });
    assert.equal(s.current?.commit, three);
    await s.stop();
  });

  test("a commit outside the watched path changes nothing: same groups, no validation", async () => {
    const r = repo();
    for (const [p, c] of Object.entries(groupFiles("edge"))) r.write(`fleet/${p}`, c);
    r.write("app/main.go", "package main\n").commit();
    const { s, of, validations } = sync({ repo: r.dir, path: "fleet" });
    await s.start();
    const before = s.current;
    r.write("app/main.go", "package main // changed\n");
    const c2 = r.commit();
    assert.equal((await s.trigger()).result, "updated");
    assert.equal(validations.count, 1);
    assert.equal(s.current?.commit, c2);
    assert.equal(s.current?.groups, before?.groups);
    assert.deepEqual(of("updated")[1]?.changes, {
      added: [],
      removed: [],
      hashChanged: [],
      settingsChanged: [],
    });
    await s.stop();
  });

  test("concurrent triggers are coalesced into one more check", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit();
    const { s } = sync({ repo: r.dir });
    const first = s.trigger();
    const second = s.trigger();
    const third = s.trigger();
    assert.notEqual(first, second);
    assert.equal(second, third);
    assert.equal((await first).result, "updated");
    assert.equal((await second).result, "unchanged");
    await s.stop();
  });

  test("an empty repository and a missing branch are retried failures, with codes", async () => {
    const r = repo();
    const { s, of } = sync({ repo: r.dir, backoff: { initialMs: 60_000 } });
    const outcome = await s.start();
    assert.equal(outcome.result, "failed");
    assert.equal(of("fetchFailed")[0]?.error.code, "SYNC_EMPTY_REPOSITORY");
    assert.equal(of("fetchFailed")[0]?.retryInMs !== undefined, true);
    r.writeAll(groupFiles("edge")).commit();
    const missing = sync({ repo: r.dir, branch: "prod" });
    await missing.s.trigger();
    assert.equal(missing.of("fetchFailed")[0]?.error.code, "SYNC_BRANCH_NOT_FOUND");
    // The branch appears: the next check succeeds and recovery is announced.
    assert.equal((await s.trigger()).result, "updated");
    assert.deepEqual(of("recovered")[0], { attempts: 1, commit: r.head() });
    await s.stop();
    await missing.s.stop();
  });

  test("restart: provenance survives, and an invalid head serves the last valid commit again", async () => {
    const r = repo();
    const state = dir();
    r.writeAll(groupFiles("a")).writeAll(groupFiles("b")).commit("c1");
    const c1 = r.head();
    const first = sync({ repo: r.dir, stateDir: state });
    await first.s.start();
    await first.s.stop();

    r.write("groups/b/collector.yaml", collectorYaml("b2"));
    const c2 = r.commit("c2");
    const second = sync({ repo: r.dir, stateDir: state });
    await second.s.start();
    assert.equal(
      second.s.current?.groups.get("a")?.hashCommit,
      c1,
      "provenance from the state file",
    );
    assert.equal(second.s.current?.groups.get("b")?.hashCommit, c2);
    await second.s.stop();

    r.write("groups/a/group.yaml", "not: [valid\n");
    const bad = r.commit("c3 bad");
    const third = sync({ repo: r.dir, stateDir: state });
    const outcome = await third.s.start();
    assert.equal(outcome.result, "stalled");
    assert.equal(third.of("stalled")[0]?.commit, bad);
    const restored = third.of("updated")[0];
    assert.equal(restored?.restored, true);
    assert.equal(third.s.current?.commit, c2, "the last valid commit is served again");
    assert.equal(third.s.current?.groups.get("a")?.hashCommit, c1);
    assert.equal(third.s.status.stalled?.commit, bad);
    assert.equal(third.of("headChanged")[0]?.previous, c2);
    await third.s.stop();
  });
});

describe("FleetSync on a remote", {
  skip: httpBackendPath() ? false : "no git-http-backend",
}, () => {
  test("fetch on trigger; unreachable remote retried with backoff, reported, state kept; recovery", async () => {
    const root = dir();
    bareRepo(root, "fleet.git");
    const work = repo();
    work.git("remote", "add", "origin", join(root, "fleet.git"));
    work.writeAll(groupFiles("edge")).commit();
    work.git("push", "-q", "origin", "main");
    const server = await GitHttpServer.start({ root });
    defer(async () => {
      await server.close();
    });
    const { s, of } = sync({
      repo: server.url("fleet.git"),
      stateDir: dir(),
      pollIntervalMs: 60_000,
      backoff: { initialMs: 20, maxMs: 80, jitter: 0 },
    });
    assert.equal((await s.start()).result, "updated");
    const served = s.current?.commit;

    work.writeAll(groupFiles("gateway")).commit();
    work.git("push", "-q", "origin", "main");
    assert.equal((await s.trigger()).result, "updated", "a webhook trigger fetches at once");
    assert.deepEqual([...(s.current?.groups.keys() ?? [])], ["edge", "gateway"]);
    assert.notEqual(s.current?.commit, served);
    const kept = s.current;

    server.failWith = 503;
    const fourth = nextEvent(s, "fetchFailed", (e) => e.attempt === 4);
    await s.trigger();
    await fourth;
    const failures = of("fetchFailed");
    assert.deepEqual(
      failures.slice(0, 4).map((f) => [f.attempt, f.retryInMs, f.error.code, f.serving]),
      [
        [1, 20, "SYNC_REMOTE_UNREACHABLE", kept?.commit],
        [2, 40, "SYNC_REMOTE_UNREACHABLE", kept?.commit],
        [3, 80, "SYNC_REMOTE_UNREACHABLE", kept?.commit],
        [4, 80, "SYNC_REMOTE_UNREACHABLE", kept?.commit],
      ],
    );
    assert.equal(failures[0]?.error.data.statusCode, 503);
    assert.equal(s.current, kept, "the last good state keeps being served");
    assert.equal(s.status.lastError?.code, "SYNC_REMOTE_UNREACHABLE");

    const recovered = nextEvent(s, "recovered");
    server.failWith = undefined;
    assert.ok((await recovered).attempts >= 4);
    assert.equal(s.status.lastError, undefined);
    await s.stop();
  });

  test("a remote that never answered: failures reported, nothing served", async () => {
    const { s, of } = sync({
      repo: await unreachableUrl(),
      stateDir: dir(),
      backoff: { initialMs: 60_000 },
    });
    const outcome = await s.start();
    assert.equal(outcome.result, "failed");
    assert.equal(of("fetchFailed")[0]?.error.code, "SYNC_REMOTE_UNREACHABLE");
    assert.match(of("fetchFailed")[0]?.error.message ?? "", /ECONNREFUSED/);
    assert.equal(s.current, undefined);
    await s.stop();
  });
});
