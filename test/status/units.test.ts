/**
 * The status writer's parts on their own: secret redaction, path checks, commit messages, group and fleet files
 * against their schemas, the Redis pending store's contract, and the writer lock.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${env:VAR}` placeholders are test data
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { AgentState } from "../../src/opamp/agent-state.js";
import { Marker, Redactor } from "../../src/redact/index.js";
import { AgentRecorder } from "../../src/status/agent-recorder.js";
import { fleetStatus } from "../../src/status/fleet-status.js";
import { groupStatus, validationStatus } from "../../src/status/group-status.js";
import { WriterLock } from "../../src/status/lock.js";
import { commitMessage } from "../../src/status/message.js";
import type { AgentFacts, GroupRolloutInfo } from "../../src/status/model.js";
import { agentFilePath, checkGroupName, kindOfPath } from "../../src/status/paths.js";
import { PendingStore } from "../../src/status/pending-store.js";
import { isSecretKey, redactConfigFile, redactText, redactValue } from "../../src/status/redact.js";
import { validateStatusFile } from "../../src/validate/status-schemas.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { fakeAgent, uidOf } from "./helpers.js";

/** A redactor with a known key, so markers are known: m("p") is what "p" becomes. */
const R = new Redactor(new Marker(Buffer.alloc(32, 1)));
const m = (secret: string) => R.marker.mark(secret);

describe("secret redaction", () => {
  test("secret-looking keys are redacted, locations and placeholders kept", () => {
    for (const k of [
      "password",
      "Password",
      "passwd",
      "token",
      "access_token",
      "secret",
      "client_secret",
      "api_key",
      "apikey",
      "X-API-Key",
      "authorization",
      "Authorization",
      "bearer_token",
      "private_key",
      "credentials",
      "passphrase",
      "sasl.password",
    ])
      assert.equal(isSecretKey(k), true, k);
    for (const k of [
      "endpoint",
      "password_file",
      "token_url",
      "bearer_token_file",
      "client_id",
      "username",
      "key_file",
      "secret_name",
      "auth",
      "authenticator",
      "tls",
      "headers",
    ])
      assert.equal(isSecretKey(k), false, k);
    const { value, redacted } = redactValue(
      {
        exporters: {
          a: {
            password: "p",
            password_file: "/f",
            headers: { Authorization: "Bearer x", "X-Honeycomb-Team": "y", "Content-Type": "t" },
          },
          b: { token: "${env:TOKEN}", auth: { authenticator: "oauth2client" } },
          c: { api_key: 12345, enabled: true, credentials: { user: "u", pass: "v", n: null } },
          d: {
            headers: [
              { name: "Authorization", value: "Basic abc" },
              { name: "x-api", value: "k" },
              { name: "Accept", value: "ok" },
            ],
          },
          e: { endpoint: "https://u:pw@h/p?api_key=k1&x=1&token=${env:T}" },
          f: { key: "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----" },
          g: { header_value: "Bearer abc.def", other: "Bearer ${env:TOKEN}" },
        },
      },
      R,
    );
    const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
    assert.deepEqual(value, {
      exporters: {
        a: {
          password: m("p"),
          password_file: "/f",
          headers: {
            Authorization: m("Bearer x"),
            "X-Honeycomb-Team": m("y"),
            "Content-Type": "t",
          },
        },
        b: { token: "${env:TOKEN}", auth: { authenticator: "oauth2client" } },
        c: {
          api_key: m("12345"),
          enabled: true,
          credentials: { user: m("u"), pass: m("v"), n: null },
        },
        d: {
          headers: [
            { name: "Authorization", value: m("Basic abc") },
            { name: "x-api", value: m("k") },
            { name: "Accept", value: "ok" },
          ],
        },
        e: { endpoint: `https://u:${m("pw")}@h/p?api_key=${m("k1")}&x=1&token=\${env:T}` },
        f: { key: m(pem) },
        g: { header_value: `Bearer ${m("abc.def")}`, other: "Bearer ${env:TOKEN}" },
      },
    });
    assert.equal(redacted, 11);
  });

  test("secrets in less obvious shapes: vendor keys, DSNs, connection strings, prose", () => {
    const { value } = redactValue(
      {
        datadog: { api: { key: "dd-key", site: "datadoghq.eu" } },
        azuremonitor: {
          connection_string: "InstrumentationKey=abc;IngestionEndpoint=https://x",
          instrumentation_key: "abc",
        },
        azure_log_analytics: { shared_key: "sk" },
        vault: { secret_id: "sid", role_id: "rid" },
        sentry: { dsn: "https://abc123@o1.ingest.sentry.io/1" },
        git: { url: "https://user:pa@ss@github.com/x" },
        sqlquery: { datasource: "host=db user=u password=s3cr3t sslmode=disable" },
        note: { text: "curl https://u:p@h/x" },
      },
      R,
    ) as { value: Record<string, Record<string, unknown>> };
    const text = JSON.stringify(value);
    for (const leaked of ["dd-key", "abc123", "s3cr3t", "pa@ss", 'sk"', "sid", ":p@"])
      assert.ok(!text.includes(leaked), `${leaked} leaked: ${text}`);
    assert.equal(
      value.datadog?.api && (value.datadog.api as { site: string }).site,
      "datadoghq.eu",
    );
    assert.equal(value.git?.url, `https://user:${m("pa@ss")}@github.com/x`);
    assert.equal(
      value.sqlquery?.datasource,
      m("host=db user=u password=s3cr3t sslmode=disable"),
      "a datasource is a DSN: hidden whole",
    );
    assert.equal(
      redactText("exporter failed: dial https://admin:hunter2@db:5432: token=abc refused", R),
      `exporter failed: dial https://admin:${m("hunter2")}@db:5432: token=${m("abc")} refused`,
    );
  });

  test("bodies that cannot be redacted are not written at all", () => {
    const json = redactConfigFile(
      "c.json",
      "application/json",
      Buffer.from('{"token":"t1","a":1}'),
      undefined,
      { redactor: R },
    );
    assert.deepEqual(json.content, { token: m("t1"), a: 1 });
    const bad = redactConfigFile("c.yaml", "text/yaml", Buffer.from("password: [unclosed\n"));
    assert.equal(bad.content, undefined);
    assert.match(bad.note ?? "", /not valid YAML or JSON/);
    assert.doesNotMatch(JSON.stringify(bad), /unclosed/);
    const ini = redactConfigFile("c.conf", "text/plain", Buffer.from("password = p\n"));
    assert.match(ini.note ?? "", /not YAML or JSON/);
    const scalar = redactConfigFile("c.yaml", "text/yaml", Buffer.from("just a secret string\n"));
    assert.match(scalar.note ?? "", /not a YAML or JSON map or list/);
    const big = redactConfigFile("c.yaml", "text/yaml", Buffer.alloc(300_000, 0x61), 1000);
    assert.match(big.note ?? "", /over the 1000-byte limit/);
    assert.deepEqual(redactConfigFile("c.yaml", "", Buffer.from("a: 1")).content, { a: 1 });
    assert.deepEqual(redactConfigFile("empty.yaml", "text/yaml", Buffer.alloc(0)).content, null);
  });
});

describe("paths", () => {
  test("only canonical uids and group names become paths", () => {
    const uid = uidOf(1);
    assert.equal(agentFilePath("edge", uid), `status/agents/edge/${uid}.yaml`);
    assert.equal(agentFilePath(null, uid), `status/agents/_unassigned/${uid}.yaml`);
    for (const g of [
      "../x",
      "a/b",
      "",
      "-a",
      "a-",
      "A",
      "_unassigned",
      "a".repeat(64),
      "a\0b",
      ".",
    ])
      assert.throws(() => checkGroupName(g), { code: "STATUS_UNSAFE_NAME" }, g);
    const lettered = uidOf(0xabcdef);
    for (const u of ["../../x", lettered.toUpperCase(), uid.replaceAll("-", ""), `${uid}/x`, ""])
      assert.throws(() => agentFilePath("edge", u), { code: "STATUS_UNSAFE_NAME" }, u);
    assert.equal(kindOfPath("status/fleet.yaml"), "fleet");
    assert.equal(kindOfPath("status/groups/edge.yaml"), "group");
    assert.equal(kindOfPath(`status/agents/_unassigned/${uid}.yaml`), "agent");
    assert.equal(kindOfPath("status/agents/../x.yaml"), undefined);
  });
});

describe("status files", () => {
  const facts = (o: Partial<AgentFacts>): AgentFacts => ({
    uid: uidOf(1),
    group: "edge",
    connected: true,
    healthy: true,
    healthError: null,
    reportedHash: "aa".repeat(32),
    desiredHash: "aa".repeat(32),
    status: "APPLIED",
    error: null,
    drift: false,
    lastConnectedAt: 1,
    lastDisconnectedAt: null,
    ...o,
  });

  test("messages say what happened", () => {
    const agents = [];
    for (let i = 0; i < 12; i++)
      agents.push({
        before: facts({
          uid: uidOf(i),
          status: "APPLYING",
          reportedHash: "3f2a9c1".padEnd(64, "0"),
        }),
        after: facts({ uid: uidOf(i), reportedHash: "3f2a9c1".padEnd(64, "0") }),
      });
    agents.push({
      after: facts({
        uid: uidOf(99),
        status: "FAILED",
        error: "exporter otlp: connection refused",
      }),
      before: facts({ uid: uidOf(99), status: "APPLYING" }),
    });
    const fleet = { serving: "9e1b2c4".padEnd(40, "0"), validation: null };
    const m1 = commitMessage({
      fleet: { before: fleet, after: fleet },
      groups: [],
      agents,
      files: 13,
    });
    assert.equal(
      m1.split("\n")[0],
      'edge: 12 applied 3f2a9c1, 1 failed: "exporter otlp: connection refused"',
    );
    const rollout = (state: "in-progress" | "rolled-back", reason: string | null) => ({
      id: "edge@3f2a9c1",
      state,
      stage: 1,
      stages: 3,
      percent: 10,
      paused: false,
      reason,
    });
    const g = {
      group: "edge",
      configHash: "a".repeat(64),
      hashCommit: "b".repeat(40),
      validation: null,
    };
    const m2 = commitMessage({
      fleet: { before: fleet, after: fleet },
      groups: [
        {
          group: "edge",
          before: { ...g, rollout: rollout("in-progress", null) },
          after: { ...g, rollout: rollout("rolled-back", "2 of 10 agents failed") },
        },
      ],
      agents: [],
      files: 1,
    });
    assert.equal(m2.split("\n")[0], "edge@3f2a9c1 rolled back: 2 of 10 agents failed");
    const failed = {
      serving: fleet.serving,
      validation: { commit: "9e1b2c4".padEnd(40, "0"), result: "failed" as const, errors: 3 },
    };
    const m3 = commitMessage({
      fleet: { before: fleet, after: failed },
      groups: [],
      agents: [],
      files: 1,
    });
    assert.equal(m3.split("\n")[0], "validation failed at 9e1b2c4: 3 errors");
    const start = commitMessage({
      fleet: { before: fleet, after: fleet },
      groups: [
        {
          group: "edge",
          before: { ...g, rollout: null },
          after: { ...g, rollout: rollout("in-progress", null) },
        },
      ],
      agents: [],
      files: 1,
    });
    assert.equal(start.split("\n")[0], "edge@3f2a9c1 started stage 1/3 (10 %)");
  });

  test("group and fleet files follow their schemas", () => {
    const info: GroupRolloutInfo = {
      current: {
        id: "edge@3f2a9c1",
        state: "in-progress",
        from: { hash: "a".repeat(64), commit: "b".repeat(40) },
        target: { hash: "c".repeat(64), commit: "3f2a9c1".padEnd(40, "0") },
        stage: 1,
        stages: 3,
        percent: 50,
        hold: { source: "api", by: "alice", at: 1_750_000_000_000 },
        members: 120,
        cohort: 60,
        applied: 58,
        failed: 1,
        pending: 1,
        startedAt: 1_750_000_000_000,
        failures: [
          { uid: uidOf(3), reason: "failed", error: "bad exporter", at: 1_750_000_001_000 },
        ],
      },
      history: [
        {
          id: "edge@1111111",
          state: "rolled-back",
          target: { hash: "a".repeat(64), commit: "1".repeat(40) },
          startedAt: 1_740_000_000_000,
          endedAt: 1_740_000_100_000,
          endReason: "2 failures",
        },
      ],
    };
    const { file, facts: gf } = groupStatus("edge", {
      served: {
        commit: "d".repeat(40),
        configHash: "a".repeat(64),
        hashCommit: "b".repeat(40),
        files: ["collector.yaml"],
      },
      validation: validationStatus("d".repeat(40), "passed", []),
      rollout: info,
    });
    assert.deepEqual(validateStatusFile("group", file), []);
    assert.equal(file.rollout?.stage, 2);
    assert.equal(gf.rollout?.paused, true);
    const fleet = fleetStatus(
      [
        facts({}),
        facts({ uid: uidOf(2), connected: false }),
        facts({ uid: uidOf(3), group: null, drift: true }),
      ],
      {
        source: { repository: "/r", branch: "main", path: "", serving: null },
        validation: null,
        servedHashes: new Map([
          ["edge", "a".repeat(64)],
          ["gateway", "b".repeat(64)],
        ]),
      },
    );
    assert.deepEqual(validateStatusFile("fleet", fleet), []);
    assert.deepEqual(fleet.agents, {
      total: 3,
      connected: 2,
      healthy: 2,
      unhealthy: 0,
      drifted: 1,
      unassigned: 1,
      unauthorized: 0,
    });
    assert.equal(fleet.groups.gateway?.agents, 0);
    assert.equal(fleet.hashes["aa".repeat(32)]?.agents, 3);
  });
});

describe("pending store and writer lock (Redis)", () => {
  let r: TestRedis;
  before(async () => {
    r = await testRedis();
  });
  after(() => r.close());

  test("record dedups, moves files with their group, yields to newer events; ack keeps re-recorded changes", async () => {
    const s = new PendingStore(r.redis, { prefix: r.prefix, branch: "opamp-status" });
    const uid = uidOf(1);
    const a = `status/agents/a/${uid}.yaml`;
    const b = `status/agents/b/${uid}.yaml`;
    assert.equal(await s.record([{ uid, path: a, content: "v1", facts: { n: 1 } }]), 1);
    assert.equal(
      await s.record([{ uid, path: a, content: "v1", facts: { n: 1 } }]),
      0,
      "same content",
    );
    assert.equal(await s.record([{ uid, path: b, content: "v1", facts: { n: 1 } }]), 1, "moved");
    let pending = await s.read();
    assert.deepEqual(pending.map((p) => [p.path, p.content]).sort(), [
      [a, null],
      [b, "v1"],
    ]);
    // A reconcile that read state before the last event is dropped.
    const old = (BigInt(await s.now()) - 1_000_000n).toString();
    assert.equal(await s.record([{ uid, path: b, content: "stale", facts: {} }], old), 0);
    // Ack only drops what was not recorded again since it was read.
    await s.record([{ uid, path: b, content: "v2", facts: { n: 2 } }]);
    await s.ack(
      pending.map((p) => ({ path: p.path, seq: p.seq, facts: p.content ? p.facts : null })),
    );
    pending = await s.read();
    assert.deepEqual(
      pending.map((p) => [p.path, p.content]),
      [[b, "v2"]],
    );
    assert.deepEqual([...(await s.facts())], [[b, { n: 1 }]]);
    assert.deepEqual([...(await s.placements())], [[uid, b]]);
    assert.equal(await s.remove(uid, b), true);
    assert.deepEqual(
      (await s.read()).map((p) => [p.path, p.content]),
      [[b, null]],
    );
  });

  test("a batch is recorded as its agents one after the other would be (bulk script; a uid named twice falls back)", async () => {
    const batch = new PendingStore(r.redis, { prefix: `${r.prefix}:bulk`, branch: "s" });
    const single = new PendingStore(r.redis, { prefix: `${r.prefix}:one`, branch: "s" });
    const u = (i: number) => uidOf(40 + i);
    const at = (g: string, i: number) => `status/agents/${g}/${u(i)}.yaml`;
    const rec = (i: number, g: string, content: string) => ({
      uid: u(i),
      path: at(g, i),
      content,
      facts: { content },
    });
    const before = [1, 2, 3, 4].map((i) => rec(i, "a", "v1"));
    const steps = [
      // same content, moved to another group, changed, new; then a uid named twice
      [rec(1, "a", "v1"), rec(2, "b", "v1"), rec(4, "a", "v2"), rec(5, "a", "v1")],
      [rec(6, "a", "v1"), rec(6, "b", "v2"), rec(7, "a", "v1")],
    ];
    const state = async (s: PendingStore) => ({
      pending: (await s.read()).map((p) => [p.path, p.content]).sort(),
      placements: [...(await s.placements())].sort(),
      digests: Object.entries(await r.redis.hgetall(s.keys.digest)).sort(),
    });
    await batch.record(before);
    for (const x of before) await single.record([x]);
    for (const step of steps) {
      const n = await batch.record(step);
      let m = 0;
      for (const x of step) m += await single.record([x]);
      assert.equal(n, m, "same number of changed files");
    }
    assert.equal(await batch.removeAgents([u(3), u(5)]), 2);
    for (const uid of [u(3), u(5)]) await single.removeAgents([uid]);
    const got = await state(batch);
    assert.deepEqual(got, await state(single));
    assert.ok(
      got.pending.some(([p, c]) => p === at("a", 6) && c === null),
      "u6 moved in-batch",
    );
    // Sequence numbers stay unique: acknowledging what was read empties the store.
    const read = await batch.read();
    assert.equal(new Set(read.map((p) => p.seq)).size, read.length);
    await batch.ack(read.map((p) => ({ path: p.path, seq: p.seq, facts: p.facts })));
    assert.equal(await batch.size(), 0);
  });

  test("a writer whose lock was taken cannot acknowledge: nothing is dropped or overwritten", async () => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:lost`, branch: "opamp-status" });
    const uid = uidOf(2);
    const path = `status/agents/a/${uid}.yaml`;
    await s.record([{ uid, path, content: "v1", facts: { n: 1 } }]);
    await r.redis.set(s.keys.lock, "the-successor");
    const [p] = await s.read();
    await assert.rejects(
      s.ack([{ path, seq: p?.seq, facts: { n: 1 } }], "my-old-token"),
      (e: Error & { code?: string }) => e.code === "STATUS_LOCK_LOST",
    );
    assert.equal((await s.read()).length, 1, "still pending");
    assert.deepEqual([...(await s.facts())], [], "no facts written");
    await s.ack([{ path, seq: p?.seq, facts: { n: 1 } }], "the-successor");
    assert.equal((await s.read()).length, 0);
  });

  test("a group name the placement gets wrong never becomes a path", async (t) => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:hostile`, branch: "opamp-status" });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const rec = new AgentRecorder(
      s,
      () => ({ group: "../../x", desiredHash: null, desiredCommit: null }),
      silent,
    );
    t.after(() => rec.close());
    await rec.record(fakeAgent(uidOf(5)));
    await rec.renderDirty();
    assert.deepEqual(
      (await s.read()).map((p) => p.path),
      [`status/agents/_unassigned/${uidOf(5)}.yaml`],
    );
    // A uid that is not canonical is never recorded.
    await rec.record(fakeAgent("../../../etc/passwd"));
    await rec.renderDirty();
    assert.equal((await s.read()).length, 1);
  });

  test("recording marks agents dirty; a flush renders each once from its latest state; a vanished agent's file is removed", async (t) => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:dirty`, branch: "opamp-status" });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const states = new Map<string, AgentState>();
    const source = {
      list: async () => [...states.keys()],
      load: async (uid: string) => states.get(uid),
    };
    let known = true;
    const place = () =>
      known ? { group: "edge", desiredHash: null, desiredCommit: null } : undefined;
    const rec = new AgentRecorder(s, place, silent, {}, source);
    t.after(() => rec.close());
    const uid = uidOf(7);
    const path = `status/agents/edge/${uid}.yaml`;
    for (let i = 0; i < 10; i++) {
      const a = fakeAgent(uid, { healthy: false, lastError: `error ${i}` });
      states.set(uid, a);
      void rec.record(a);
    }
    void rec.record(fakeAgent(uidOf(8)));
    states.set(uidOf(8), fakeAgent(uidOf(8)));
    await rec.settled();
    assert.equal(await s.size(), 0, "nothing rendered when recording");
    assert.deepEqual((await rec.dirty.read()).map((e) => e.uid).sort(), [uid, uidOf(8)]);
    assert.equal(await rec.renderDirty(), 2);
    assert.equal(rec.rendered, 2, "ten changes of one agent: one render");
    const [first] = (await s.read()).filter((p) => p.path === path);
    assert.match(first?.content ?? "", /error 9/);
    assert.equal(await rec.dirty.size(), 0);
    // A mark made while the writer rendered survives the writer's clear.
    await rec.record(states.get(uid) as AgentState);
    const read = await rec.dirty.read();
    await rec.record(states.get(uid) as AgentState);
    await rec.dirty.clear(read);
    assert.equal(await rec.dirty.size(), 1, "marked again: still dirty");
    // Unchanged inputs: not rendered again, and the mark is cleared.
    await rec.renderDirty();
    assert.equal(rec.rendered, 2);
    assert.equal(await rec.dirty.size(), 0);
    // Placement not known yet: the agent stays dirty until it is.
    known = false;
    await rec.record(fakeAgent(uid, { lastError: "later" }));
    await rec.renderDirty();
    assert.equal(await rec.dirty.size(), 1, "parked");
    known = true;
    // The agent's state vanished from the source before the flush: its file is removed.
    states.delete(uid);
    await rec.renderDirty();
    assert.equal(await rec.dirty.size(), 0);
    assert.equal((await s.read()).find((p) => p.path === path)?.content, null);
    assert.deepEqual([...(await s.placements()).keys()], [uidOf(8)]);
  });

  test("many dirty agents render in overlapping slices: each once, every file pending; a failure between slices is thrown and leaves the rest dirty", async (t) => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:slices`, branch: "opamp-status" });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const place = () => ({ group: "edge", desiredHash: null, desiredCommit: null });
    const rec = new AgentRecorder(s, place, silent);
    t.after(() => rec.close());
    // 10 slices of 50: several in flight (one per worker + 1, at most 5), so some never start.
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => rec.record(fakeAgent(uidOf(i)))));
    assert.equal(await rec.renderDirty(), n);
    assert.equal(rec.rendered, n);
    const pending = await s.read();
    assert.equal(pending.length, n);
    for (let i = 0; i < n; i++) {
      const file = pending.find((p) => p.path === `status/agents/edge/${uidOf(i)}.yaml`);
      assert.match(file?.content ?? "", new RegExp(uidOf(i)), `agent ${i} rendered as itself`);
    }
    assert.equal(await rec.dirty.size(), 0);
    // A failing `between` (the writer's lock lost) stops the flush: thrown, not all rendered.
    await Promise.all(
      Array.from({ length: n }, (_, i) => rec.record(fakeAgent(uidOf(i), { lastError: "x" }))),
    );
    let calls = 0;
    await assert.rejects(
      rec.renderDirty(async () => {
        if (++calls === 1) throw new Error("lock lost");
      }),
      /lock lost/,
    );
    const left = await rec.dirty.size();
    assert.ok(left > 0 && left < n, `some agents stay dirty (${left})`);
    await rec.renderDirty();
    assert.equal(await rec.dirty.size(), 0);
  });

  test("a source's per-slice state (beforeRender) holds until that slice is placed, though slices overlap", async (t) => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:staged`, branch: "opamp-status" });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const tick = () => new Promise<void>((res) => setImmediate(res));
    const states = new Map<string, AgentState>();
    // Like LastCommands: each call replaces what the previous slice loaded.
    let loaded = new Set<string>();
    const source = {
      list: async () => [...states.keys()],
      load: async (uid: string) => {
        // Slower than beforeRender: the next slice's call would come first if they overlapped.
        await new Promise((res) => setTimeout(res, 1));
        return states.get(uid);
      },
      beforeRender: async (uids: readonly string[]) => {
        await tick();
        loaded = new Set(uids);
      },
    };
    const misplaced: string[] = [];
    const place = (a: Readonly<AgentState>) => {
      if (!loaded.has(a.instanceUid)) misplaced.push(a.instanceUid);
      return { group: "edge", desiredHash: null, desiredCommit: null };
    };
    const rec = new AgentRecorder(s, place, silent, {}, source);
    t.after(() => rec.close());
    for (let i = 0; i < 300; i++) states.set(uidOf(i), fakeAgent(uidOf(i)));
    await rec.mark([...states.keys()]);
    assert.equal(await rec.renderDirty(), 300);
    assert.deepEqual(misplaced, []);
  });

  test("an agent re-claimed after a sweep, in the state recorded before it, is rendered connected again", async (t) => {
    const s = new PendingStore(r.redis, { prefix: `${r.prefix}:reclaim`, branch: "opamp-status" });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const uid = uidOf(9);
    const before = fakeAgent(uid, { now: 1_000 });
    let state: AgentState = before;
    const source = { list: async () => [uid], load: async () => state };
    const place = () => ({ group: "edge", desiredHash: null, desiredCommit: null });
    const rec = new AgentRecorder(s, place, silent, {}, source);
    t.after(() => rec.close());
    const content = async () => (await s.read()).find((p) => p.path.endsWith(`${uid}.yaml`));
    await rec.record(state);
    await rec.renderDirty();
    assert.match((await content())?.content ?? "", /connected: true/);
    // The liveness sweep marks it disconnected; the writer renders that.
    state = { ...before, connected: false, lastDisconnectedAt: 2_000 };
    await rec.record(state);
    await rec.renderDirty();
    assert.match((await content())?.content ?? "", /connected: false/);
    // Re-claimed: the same state as before the sweep, event for event.
    state = before;
    await rec.record(state);
    await rec.renderDirty();
    assert.match((await content())?.content ?? "", /connected: true/);
    assert.equal(rec.rendered, 3, "the fingerprint is of the last render, not of past events");
  });

  test("one lock holder; only the holder renews or releases", async () => {
    const key = `${r.prefix}:lock`;
    let lost = 0;
    const a = new WriterLock(r.redis, key, { ttlMs: 1000, onLost: () => lost++ });
    const b = new WriterLock(r.redis, key, { ttlMs: 1000 });
    assert.equal(await a.acquire(), true);
    assert.equal(await b.acquire(), false);
    await b.release();
    assert.equal(await r.redis.get(key), a.token);
    await r.redis.del(key);
    assert.equal(await b.acquire(), true);
    assert.equal(await a.renew(), false);
    assert.equal(lost, 1);
    await a.release();
    assert.equal(await r.redis.get(key), b.token);
    await b.release();
    assert.equal(await r.redis.get(key), null);
  });
});
