/**
 * Process liveness in Redis (src/opamp/replica-liveness.ts) with real servers, sockets and
 * Redis: the agents of a process whose key expired are marked disconnected by a sweep, once
 * even when two processes sweep; an agent that moved to a live process is left alone; a
 * process whose own key expired while it lived re-claims its agents. Across replicas: an agent
 * that moved keeps its connect when its old replica sees the old connection end (the stored
 * owner decides), a second agent with the uid of one connected elsewhere is refused, and HTTP
 * polls of one agent may alternate between replicas.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { type AgentEventMap, uidToString } from "../../src/opamp/index.js";
import { TestAgent } from "../helpers/agent.js";
import { startReplica, type TestReplica } from "../helpers/opamp-server.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const TIMEOUT_MS = 300;

interface Replica extends TestReplica {
  lost: AgentEventMap["disconnected"][];
  connected: string[];
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A replica (test/helpers/opamp-server.ts) that also records its agents' lost and connects. */
async function replica(r: TestRedis, id: string, timeoutMs = 60_000): Promise<Replica> {
  const started = await startReplica(r, id, { timeoutMs });
  const { server } = started;
  cleanups.push(() => server.close());
  const out: Replica = { ...started, lost: [], connected: [] };
  server.events.on("disconnected", (e) => e.lost && out.lost.push(e));
  server.events.on("connected", (e) => out.connected.push(e.instanceUid));
  return out;
}

/** Two replicas `a` and `b` on a fresh Redis prefix, both with a live liveness key. */
async function twoLiveReplicas(): Promise<{ r: TestRedis; a: Replica; b: Replica }> {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const a = await replica(r, "a:1:aa");
  const b = await replica(r, "b:2:bb");
  await a.liveness.tick();
  await b.liveness.tick();
  return { r, a, b };
}

async function agentOn(rep: Replica): Promise<TestAgent> {
  const a = new TestAgent({ transport: "websocket", url: rep.url });
  await a.connect();
  await a.send();
  cleanups.push(() => a.close());
  return a;
}

const expired = () => new Promise((r) => setTimeout(r, TIMEOUT_MS + 100));

test("agents of a dead process are disconnected once; one that moved is left alone", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  // `dead` refreshes its key once (tick) and never again, as after kill -9.
  const dead = await replica(r, "dead:1:aa", TIMEOUT_MS);
  const b = await replica(r, "b:2:bb");
  const c = await replica(r, "c:3:cc");
  await dead.liveness.tick();
  await b.liveness.tick();
  await c.liveness.tick();
  const stays = await agentOn(dead);
  const goes = await agentOn(dead);
  const moved = await agentOn(dead);
  await new Promise((res) => setImmediate(res)); // the agent set is written in the next turn
  await dead.liveness.tick();

  // `moved` reconnects to b while Redis still says connected (owner: dead).
  const again = new TestAgent({ transport: "websocket", url: b.url, uid: moved.uid });
  await again.connect();
  again.seq = moved.seq;
  await again.send();
  cleanups.push(() => again.close());
  const movedUid = b.connected[0];
  assert.ok(movedUid, "a first message on b is a connect there");

  assert.equal(await b.liveness.sweep(), 0, "dead's key has not expired yet");
  await expired();
  // Two live processes sweep at once (their own keys live for a minute).
  const [fromB, fromC] = await Promise.all([b.liveness.sweep(), c.liveness.sweep()]);
  const lost = [...b.lost, ...c.lost].map((e) => e.instanceUid).sort();
  assert.deepEqual(lost, [uidToString(stays.uid), uidToString(goes.uid)].sort());
  assert.equal(fromB + fromC, 2, "each lost agent once, whoever swept");
  assert.ok([...b.lost, ...c.lost].every((e) => e.reason.includes(dead.id)));
  for (const uid of lost) assert.equal((await b.server.store.load(uid))?.connected, false);
  assert.equal((await b.server.store.load(movedUid))?.connected, true);
  assert.equal((await b.server.store.load(movedUid))?.owner.startsWith("b:2:bb/"), true);
  assert.equal(
    await r.redis.sismember(`${r.prefix}:replicas`, dead.id),
    0,
    "a swept process is forgotten",
  );
});

test("a live process whose key expired re-claims the agents swept meanwhile", async () => {
  const { r, a, b } = await twoLiveReplicas();
  const agent = await agentOn(a);
  const uid = a.connected[0] ?? "";
  await new Promise((res) => setImmediate(res));
  await a.liveness.tick();

  // a's key vanishes (as if a stalled past the timeout); b sweeps a's agent.
  await r.redis.del(`${r.prefix}:replica:${a.id}`);
  await b.liveness.sweep();
  assert.deepEqual(
    b.lost.map((e) => e.instanceUid),
    [uid],
  );
  assert.equal((await a.server.store.load(uid))?.connected, false);

  await a.liveness.tick();
  const stored = await a.server.store.load(uid);
  assert.equal(stored?.connected, true, "re-claimed");
  assert.deepEqual(a.connected, [uid, uid], "connected announced again");
  // Announced with the disconnect time the sweep stored (the status branch saw that one).
  assert.ok(stored?.lastDisconnectedAt);
  assert.equal(a.server.handler.live.get(uid)?.state.lastDisconnectedAt, stored.lastDisconnectedAt);
  agent.close();
});

test("a sweep that found a process dead does not flip its agents after it came back", async () => {
  const { r, a, b } = await twoLiveReplicas();
  const agent = await agentOn(a);
  const uid = a.connected[0] ?? "";
  await new Promise((res) => setImmediate(res));
  await a.liveness.tick();

  // a's key vanishes (a stalled past the timeout). b's sweep sees it gone; before b flips a's
  // agents, a comes back: it sets its key and re-claims (nothing is flipped yet).
  await r.redis.del(`${r.prefix}:replica:${a.id}`);
  const smembers = r.redis.smembers.bind(r.redis);
  r.redis.smembers = (async (key: string) => {
    const members = await smembers(key);
    if (key === `${r.prefix}:replica:${a.id}:agents`) {
      r.redis.smembers = smembers;
      await a.liveness.tick();
    }
    return members;
  }) as typeof r.redis.smembers;
  await b.liveness.sweep();
  r.redis.smembers = smembers;
  assert.deepEqual(b.lost, [], "nothing marked lost");
  assert.equal((await a.server.store.load(uid))?.connected, true);
  agent.close();
});

/**
 * `a`'s key vanishes (a stalled past the timeout) and `b` sweeps it; right after b flipped
 * a's agent, and before b reloads it, a comes back (sets its key, re-claims, rewrites its set).
 */
async function ownerReturnsDuringSweep() {
  const { r, a, b } = await twoLiveReplicas();
  const agent = await agentOn(a);
  cleanups.push(() => agent.close());
  const uid = a.connected[0] ?? "";
  await new Promise((res) => setImmediate(res));
  await a.liveness.tick();
  await r.redis.del(`${r.prefix}:replica:${a.id}`);
  const load = b.server.store.load.bind(b.server.store);
  b.server.store.load = async (id: string) => {
    b.server.store.load = load;
    await a.liveness.tick();
    return load(id);
  };
  await b.liveness.sweep();
  b.server.store.load = load;
  return { r, a, b, uid };
}

test("a sweep keeps the agent set of a process that came back meanwhile", async () => {
  const { r, a, uid } = await ownerReturnsDuringSweep();
  assert.equal((await a.server.store.load(uid))?.connected, true, "re-claimed");
  assert.deepEqual(await r.redis.smembers(`${r.prefix}:replica:${a.id}:agents`), [uid]);
  assert.equal(await r.redis.sismember(`${r.prefix}:replicas`, a.id), 1, "still known");
});

test("an agent re-claimed between a sweep's flip and its reload is not announced lost", async () => {
  const { a, b, uid } = await ownerReturnsDuringSweep();
  assert.deepEqual(b.lost, [], "no disconnected (lost) after the owner's connected");
  assert.deepEqual(a.connected, [uid, uid], "the owner announced it connected again");
});

test("a long re-claim runs in concurrent slices and does not hold back key refreshes", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const a = await replica(r, "a:1:aa", TIMEOUT_MS);
  await a.liveness.start();
  cleanups.push(() => a.liveness.close());
  await agentOn(a);
  await agentOn(a);
  const uids = [...a.connected];
  // A sweep elsewhere marked them disconnected (once their batched saves are stored).
  for (const uid of uids) {
    await waitFor("stored connected", async () => (await a.server.store.load(uid))?.connected);
    await r.redis.hset(`${r.prefix}:agent:${uid}`, "connected", "0");
  }
  const key = `${r.prefix}:replica:${a.id}`;
  // Every re-claim command waits until released, as on a host too loaded to finish in time.
  let entered = 0;
  let release = () => {};
  const released = new Promise<void>((res) => {
    release = res;
  });
  const redis = r.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const reclaim = redis.replicaReclaim?.bind(r.redis);
  assert.ok(reclaim);
  redis.replicaReclaim = async (...args: unknown[]) => {
    entered++;
    await released;
    return reclaim(...args);
  };
  cleanups.push(() => {
    release();
    redis.replicaReclaim = reclaim;
  });
  await r.redis.del(key); // a's key expired
  await waitFor("both agents' re-claims issued together", () => entered === 2, {
    timeoutMs: 5000,
  });
  const first = await r.redis.get(key);
  await waitFor(
    "the key refreshed while the re-claim waits",
    async () => {
      const now = await r.redis.get(key);
      return now !== null && now !== first;
    },
    { timeoutMs: 5000 },
  );
  assert.equal(entered, 2, "no second re-claim while one is on its way");
  release();
  await waitFor("connected announced again", () => a.connected.length === 4, { timeoutMs: 5000 });
});

/** A description with `host.name`, as agents send on connect. */
function described(host: string) {
  return {
    agentDescription: {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
      nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
    },
  };
}

test("an agent that moved to another replica stays connected when its old socket closes", async () => {
  const { a, b } = await twoLiveReplicas();
  const onA = new TestAgent({ transport: "websocket", url: a.url });
  await onA.connect();
  await onA.send(described("h1"));
  cleanups.push(() => onA.close());
  const uid = uidToString(onA.uid);
  // The load balancer sends it to b; the old socket on a is still open (half-open).
  const onB = new TestAgent({ transport: "websocket", url: b.url, uid: onA.uid });
  await onB.connect();
  onB.seq = onA.seq;
  await onB.send(described("h1"));
  cleanups.push(() => onB.close());
  assert.deepEqual(b.connected, [uid], "the same agent (same description) is taken over by b");
  const elsewhere: AgentEventMap["disconnected"][] = [];
  a.server.events.on("disconnected", (e) => elsewhere.push(e));
  onA.close();
  await waitFor("the agent ended elsewhere", () => elsewhere.length === 1, { timeoutMs: 5000 });
  assert.equal(elsewhere[0]?.elsewhere, true, "a ends only its own bookkeeping");
  const stored = await b.server.store.load(uid);
  assert.equal(stored?.connected, true, "a's disconnect did not overwrite b's connect");
  assert.ok(stored?.owner.startsWith("b:2:bb/"));
});

test("a second agent with the uid of one connected through another live replica is refused", async () => {
  const { a, b } = await twoLiveReplicas();
  const first = new TestAgent({ transport: "websocket", url: a.url });
  await first.connect();
  await first.send(described("h1"));
  cleanups.push(() => first.close());
  const clone = new TestAgent({ transport: "websocket", url: b.url, uid: first.uid });
  await clone.connect();
  cleanups.push(() => clone.close());
  const reply = await clone.send(described("a-cloned-vm"));
  const given = (reply.agentIdentification as { newInstanceUid?: Uint8Array } | null)
    ?.newInstanceUid;
  assert.equal(given?.length, 16, "the clone is given a new instance uid");
  assert.equal(b.server.handler.stats.duplicateUids, 1);
  assert.deepEqual(b.connected, [], "the clone is not connected under the uid");
  const stored = await a.server.store.load(uidToString(first.uid));
  assert.ok(stored?.owner.startsWith("a:1:aa/"), "the first agent keeps its uid");
});

test("HTTP polls of one agent alternating between replicas keep it connected", async () => {
  const { a, b } = await twoLiveReplicas();
  const viaA = new TestAgent({ transport: "http", url: a.url });
  const viaB = new TestAgent({ transport: "http", url: b.url, uid: viaA.uid });
  const uid = uidToString(viaA.uid);
  await viaA.send(described("h1"));
  for (let i = 0; i < 3; i++) {
    viaB.seq = viaA.seq;
    await viaB.send();
    viaA.seq = viaB.seq;
    await viaA.send();
  }
  // Replica b's session ends (no poll there within its window): a heard from the agent
  // later, so nothing is stored and the agent stays connected.
  await a.server.store.flushTouches();
  const ended: AgentEventMap["disconnected"][] = [];
  b.server.events.on("disconnected", (e) => ended.push(e));
  for (const live of [...b.server.handler.live.values()])
    (live.state as { lastSeenAt: number }).lastSeenAt = 0;
  await b.server.handler.sweep();
  assert.equal(ended.length, 1);
  assert.equal(ended[0]?.elsewhere, true);
  assert.equal((await a.server.store.load(uid))?.connected, true);
});

test("agents left connected by a process without a liveness key are swept once (upgrade gap)", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const a = await replica(r, "a:1:aa");
  await a.liveness.tick();
  const live = await agentOn(a);
  await new Promise((res) => setTimeout(res, 50)); // its save is batched
  // An agent an older version left "connected": its owner never had a liveness key.
  const orphan = "0123456789abcdef0123456789abcdef";
  await r.redis.hset(`${r.prefix}:agent:${orphan}`, "connected", "1", "owner", "old:9:zz/3");
  await r.redis.sadd(`${r.prefix}:agents`, orphan);
  assert.equal(await a.liveness.sweepOrphans(), 1);
  assert.deepEqual(
    a.lost.map((e) => e.instanceUid),
    [orphan],
  );
  assert.equal(await r.redis.hget(`${r.prefix}:agent:${orphan}`, "connected"), "0");
  assert.equal((await a.server.store.load(uidToString(live.uid)))?.connected, true);
  assert.equal(await a.liveness.sweepOrphans(), 0, "once");
});

test("an outage: recorded by the first refresh after none for longer than the timeout", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  // `dead` refreshes its key once (tick) and never again, as after kill -9.
  const dead = await replica(r, "dead:1:aa", TIMEOUT_MS);
  const next = await replica(r, "next:2:bb", TIMEOUT_MS);
  assert.equal(await next.liveness.lastOutage(), undefined, "a first start ever: no outage");
  await r.redis.set(`${r.prefix}:service:alive-at`, "not a time");
  assert.equal(await next.liveness.lastOutage(), undefined, "an unreadable alive-at: no outage");
  await dead.liveness.tick();
  const aliveAt = Number(await r.redis.get(`${r.prefix}:service:alive-at`));
  assert.ok(Math.abs(aliveAt - Date.now()) < 5000, `alive-at ${aliveAt}`);
  assert.equal(await next.liveness.lastOutage(), undefined, "a process refreshed just now");
  await expired();
  const outage = await next.liveness.lastOutage();
  assert.ok(outage && outage.from >= aliveAt, JSON.stringify(outage));
  assert.ok(outage.to - outage.from > TIMEOUT_MS, JSON.stringify(outage));
  // Later refreshes, of any process, name the same outage (every group's next tick steps it).
  await next.liveness.tick();
  assert.deepEqual(await dead.liveness.lastOutage(), outage);
});
