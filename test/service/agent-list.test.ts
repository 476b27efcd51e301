/**
 * The agent list (src/service/agent-list.ts) through the service's backend against a real
 * Redis: filters and search find exactly the matching agents across cursor pages; a page's work
 * is bounded by the budget (a sparse filter answers short pages with a cursor); counts are
 * exact within the count budget and estimates beyond it; paging while agents are added and
 * removed lists no agent twice and skips none present throughout; agents stored before the
 * uid order existed are copied into it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { AgentQuery } from "../../src/api/backend.js";
import {
  type AgentState,
  AgentStore,
  agentAttributes,
  encodeSubMessage,
  type OpampServer,
} from "../../src/opamp/index.js";
import { ServiceBackend, type ServiceBackendParts } from "../../src/service/admin-backend.js";
import { LOAD_BUDGET } from "../../src/service/agent-list.js";
import { AgentSearchIndex, searchText } from "../../src/service/agent-search.js";
import type { FleetProvider } from "../../src/service/fleet-provider.js";
import { fakeAgent } from "../api/fake-backend.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();
const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/** Agent n: host `host-n`, disconnected when n % 10 === 0, group "rare" when n % 100 === 0. */
function agentOf(n: number): AgentState {
  const agent = fakeAgent(uid(n), { "host.name": `host-${n}` });
  agent.connected = n % 10 !== 0;
  if (agent.description)
    agent.encoded.description = Buffer.from(
      encodeSubMessage("AgentDescription", agent.description),
    );
  return agent;
}
const hostNumber = (s: Readonly<AgentState>) =>
  Number(agentAttributes(s).get("host.name")?.slice(5));

/** A backend over stored agents 1..n (none live here); `indexed`: their texts are in the index. */
async function fleet(n: number, indexed = true) {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const store = new AgentStore(redis, { prefix });
  const search = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const add = async (from: number, to: number) => {
    const texts: Record<string, string> = {};
    const saves: Array<Promise<void>> = [];
    for (let i = from; i <= to; i++) {
      const agent = agentOf(i);
      texts[agent.instanceUid] = searchText(agent);
      saves.push(store.save(agent, ["description"], "replica/1", true));
    }
    await Promise.all(saves);
    if (indexed) await redis.hset(search.key, texts);
  };
  await add(1, n);
  /** Agents loaded in full (load) and for the filters only (loadBrief). */
  const loads = { count: 0, brief: 0 };
  const load = store.load.bind(store);
  store.load = (u) => {
    loads.count++;
    return load(u);
  };
  const loadBrief = store.loadBrief.bind(store);
  store.loadBrief = (uids) => {
    loads.brief += uids.length;
    return loadBrief(uids);
  };
  const provider = {
    groupOf: (s: Readonly<AgentState>) => (hostNumber(s) % 100 === 0 ? "rare" : "big"),
    unauthorizedGroup: () => undefined,
  } as unknown as FleetProvider;
  const opamp = { store, handler: { live: new Map() } } as unknown as OpampServer;
  const backend = new ServiceBackend({
    redis,
    prefix,
    opamp,
    provider,
    search,
  } as unknown as ServiceBackendParts);
  /** Every page of `q` read with the cursor: the uids in order, and how many requests. */
  const walk = async (q: AgentQuery, between?: (page: number) => Promise<void>) => {
    const uids: string[] = [];
    let requests = 0;
    for (let after: string | undefined; ; ) {
      const page = await backend.agents({ ...q, ...(after ? { after } : {}) });
      requests++;
      uids.push(...page.agents.map((a) => a.state.instanceUid));
      if (page.next === undefined) return { uids, requests };
      assert.ok(after === undefined || page.next > after, "the cursor moves forward");
      after = page.next;
      await between?.(requests);
    }
  };
  return { redis, prefix, store, search, backend, loads, add, walk };
}

const range = (n: number, keep: (i: number) => boolean) =>
  Array.from({ length: n }, (_, i) => i + 1)
    .filter(keep)
    .map(uid);

test("filters and search find exactly their agents across pages; counts within the budget are exact", async () => {
  const n = 1500;
  const { backend, walk } = await fleet(n);
  const cases: Array<[AgentQuery, (i: number) => boolean]> = [
    [{ group: "rare" }, (i) => i % 100 === 0],
    [{ state: "disconnected" }, (i) => i % 10 === 0],
    [{ state: "connected", group: "rare" }, () => false],
    [{ search: "HOST-14" }, (i) => String(i).startsWith("14")],
    [{ search: "000000000777" }, (i) => i === 777],
    [{ search: "host-1", state: "disconnected" }, (i) => i % 10 === 0 && String(i).startsWith("1")],
  ];
  for (const [q, keep] of cases) {
    const want = range(n, keep);
    const { uids } = await walk({ ...q, limit: 7 });
    assert.deepEqual(uids, want, JSON.stringify(q));
    const first = await backend.agents({ ...q, limit: 7 });
    assert.equal(first.total, want.length, `the count of ${JSON.stringify(q)}`);
    assert.equal(first.estimate, undefined);
  }
  const plain = await backend.agents({ limit: 10, offset: 5 });
  assert.equal(plain.total, n);
  assert.deepEqual(
    plain.agents.map((a) => a.state.instanceUid),
    range(15, (i) => i > 5),
  );
  assert.equal(plain.next, uid(15));
});

test("a sparse filter's page is bounded: short pages with a cursor, an estimated count", async () => {
  const n = 5000;
  const { backend, loads, walk } = await fleet(n);
  Object.assign(loads, { count: 0, brief: 0 });
  const first = await backend.agents({ group: "rare", limit: 100 });
  // The page walk and the count walk each read at most the budget's agents (there is no group
  // index), for the filters only; the page's agents alone are loaded in full.
  assert.ok(loads.brief <= 2 * LOAD_BUDGET, `read ${loads.brief}`);
  assert.equal(first.agents.length, LOAD_BUDGET / 100);
  assert.equal(loads.count, first.agents.length);
  assert.equal(first.next, uid(LOAD_BUDGET));
  assert.equal(first.total, undefined);
  assert.equal(first.estimate, n / 100);
  assert.deepEqual(first.progress, { through: LOAD_BUDGET, of: n });
  Object.assign(loads, { count: 0, brief: 0 });
  const second = await backend.agents({ group: "rare", limit: 100, after: first.next });
  assert.ok(loads.brief <= LOAD_BUDGET, `the second page read ${loads.brief} (count cached)`);
  assert.equal(loads.count, second.agents.length);
  assert.equal(second.agents[0]?.state.instanceUid, uid(LOAD_BUDGET + 100));
  const { uids, requests } = await walk({ group: "rare", limit: 100 });
  assert.deepEqual(
    uids,
    range(n, (i) => i % 100 === 0),
  );
  assert.equal(requests, Math.ceil(n / LOAD_BUDGET));
  // A search reads texts, not agents: it loads only its matches.
  loads.count = 0;
  const found = await backend.agents({ search: "host-4321", limit: 50 });
  assert.deepEqual(
    found.agents.map((a) => a.state.instanceUid),
    [uid(4321)],
  );
  assert.equal(found.total, 1);
  assert.equal(loads.count, 1, "only the match (the page walk read every text: an exact count)");
});

test("an offset the budget cannot skip at once is carried to the next page", async () => {
  const n = 5000;
  const { backend } = await fleet(n);
  // Group "rare" is 1 agent in 100: the load budget (offset + LOAD_BUDGET) holds 20 of them,
  // fewer than the 30 to skip.
  const first = await backend.agents({ group: "rare", offset: 30, limit: 5 });
  assert.deepEqual(first.agents, []);
  assert.equal(first.next, uid(30 + LOAD_BUDGET));
  assert.equal(first.nextOffset, 10);
  const second = await backend.agents({
    group: "rare",
    limit: 5,
    after: first.next,
    offset: first.nextOffset,
  });
  assert.deepEqual(
    second.agents.map((a) => a.state.instanceUid),
    [3100, 3200, 3300, 3400, 3500].map(uid),
  );
  assert.equal(second.nextOffset, undefined);
});

test("paging while agents are added and removed: none twice, none present throughout skipped", async () => {
  const n = 600;
  const { redis, prefix, add, walk } = await fleet(n);
  const removed = new Set<string>();
  const change = async (page: number) => {
    // New agents sort after the cursor; old ones go before and after it (hash and order).
    await add(n + page * 5 + 1, n + page * 5 + 5);
    const gone = uid(page * 17 + 1);
    removed.add(gone);
    await redis
      .multi()
      .del(`${prefix}:agent:${gone}`)
      .srem(`${prefix}:agents`, gone)
      .zrem(`${prefix}:agent-order`, gone)
      .exec();
  };
  // Removed stays removed: a later walk must not count an agent gone in an earlier one.
  for (const q of [{}, { state: "connected" as const }, { search: "host-1" }]) {
    const { uids } = await walk({ ...q, limit: 25 }, change);
    assert.equal(new Set(uids).size, uids.length, `no agent twice (${JSON.stringify(q)})`);
    const matches = (i: number) =>
      "state" in q ? i % 10 !== 0 : "search" in q ? String(i).startsWith("1") : true;
    const throughout = range(n, matches).filter((u) => !removed.has(u));
    const seen = new Set(uids);
    assert.deepEqual(
      throughout.filter((u) => !seen.has(u)),
      [],
      `none skipped (${JSON.stringify(q)})`,
    );
    assert.deepEqual([...uids].sort(), uids, "in uid order");
  }
});

test("agents stored before the uid order existed are copied into it; gone ones leave the index", async () => {
  const { redis, prefix, backend, search } = await fleet(120, false);
  // The layout before the order: the set alone.
  await redis.del(`${prefix}:agent-order`);
  const page = await backend.agents({ limit: 1000 });
  assert.equal(page.total, 120);
  assert.equal(page.agents.length, 120);
  assert.equal(await redis.zcard(`${prefix}:agent-order`), 120);
  // Agents added to the set alone meanwhile (an older replica) wait for the next copy: at most
  // one per COPY_INTERVAL_MS, not one per list.
  await redis.sadd(`${prefix}:agents`, uid(999));
  assert.equal((await backend.agents({ limit: 1 })).total, 120);
  // A search over agents without texts indexes them; an entry of an agent gone is removed.
  const found = await backend.agents({ search: "host-77", limit: 10 });
  assert.deepEqual(
    found.agents.map((a) => a.state.instanceUid),
    [uid(77)],
  );
  // Texts are written per 20 ms window (agent-search.ts): wait for the window, bounded.
  for (let i = 0; i < 100 && (await redis.hlen(search.key)) < 100; i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.ok((await redis.hlen(search.key)) >= 100, "the texts read were indexed");
});

test("a search removes the index entry of an agent no longer stored", async () => {
  const { redis, prefix, backend, search } = await fleet(120, false);
  await backend.agents({ search: "host-77", limit: 10 });
  // The texts this search read are written after a 20 ms window; a backfill still pending
  // when the agent is deleted would write its text back (HSETNX), so let it land first.
  for (let i = 0; i < 100 && (await redis.hlen(search.key)) < 100; i++)
    await new Promise((r) => setTimeout(r, 20));
  await redis.hset(search.key, uid(3), "stale");
  await redis.del(`${prefix}:agent:${uid(3)}`);
  await backend.agents({ search: "stale", limit: 10 });
  assert.equal(await redis.hexists(search.key, uid(3)), 0);
});
