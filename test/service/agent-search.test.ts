/**
 * The agent search index against a real Redis, used as a list's walk uses it per slice of uids
 * (src/service/agent-list.ts): the first search indexes agents stored before the index, later
 * ones load only what the index matches; a description change is indexed from the agent
 * events; entries of agents no longer stored go, and a text read before its agent was removed
 * does not bring its entry back;
 * a change whose write failed is written again; the index is keyed by the redaction rules;
 * the search finds what views show, not hidden values; with the fleet's key, texts are
 * computed in a worker thread with the same markers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import pino from "pino";
import { attributeView } from "../../src/api/view-attribute.js";
import type { AgentState } from "../../src/opamp/index.js";
import { AgentEvents, agentAttributes } from "../../src/opamp/index.js";
import { Marker, REDACTION_RULES_VERSION, Redactor } from "../../src/redact/index.js";
import { AgentSearchIndex, searchText } from "../../src/service/agent-search.js";
import { searchTextOf } from "../../src/service/search-text.js";
import { fakeAgent } from "../api/fake-backend.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const defer = deferred();
const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/**
 * What a list's walk does with one slice: the index's matches, plus the agents without a text
 * loaded, checked and remembered.
 */
async function search(
  index: AgentSearchIndex,
  needle: string,
  uids: readonly string[],
  load: (uids: readonly string[]) => Promise<AgentState[]>,
): Promise<string[]> {
  const { matches, unknown } = await index.match(needle, uids);
  const loaded = unknown.length > 0 ? await load(unknown) : [];
  index.remember(loaded);
  for (const state of loaded)
    if (searchText(state).includes(needle)) matches.add(state.instanceUid);
  return uids.filter((u) => matches.has(u));
}

test("search: indexes what is missing once, then loads only the matches", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const hosts = ["Edge-Berlin-1", "edge-paris-2", "core-berlin-3", "core-oslo-4"];
  const agents = new Map(
    hosts.map((h, i) => [uid(i + 1), fakeAgent(uid(i + 1), { "host.name": h })]),
  );
  // Stored (a record with `connected`, as every save writes): only stored agents are indexed.
  for (const u of agents.keys()) await redis.hset(`${prefix}:agent:${u}`, "connected", "1");
  const index = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const loaded: string[] = [];
  const load = async (uids: readonly string[]) => {
    loaded.push(...uids);
    return uids.flatMap((u) => agents.get(u) ?? []);
  };
  const uids = [...agents.keys()];

  assert.deepEqual(await search(index, "berlin", uids, load), [uid(1), uid(3)]);
  assert.deepEqual(loaded.sort(), uids, "the first search indexes every agent");
  const key = index.key;
  await waitFor("the index written", async () => (await redis.hlen(key)) === 4);

  loaded.length = 0;
  assert.deepEqual(await search(index, "edge", uids, load), [uid(1), uid(2)]);
  assert.deepEqual(await search(index, "000000000004", uids, load), [uid(4)]);
  assert.deepEqual(await search(index, "nowhere", uids, load), []);
  assert.deepEqual(loaded, [], "later searches read the index only");

  // An agent no longer stored loses its entry.
  await index.forget([uid(4)]);
  assert.equal(await redis.hexists(key, uid(4)), 0);
  assert.deepEqual(await search(index, "oslo", uids.slice(0, 3), load), []);
});

test("a text read before its agent was removed does not bring back the entry a search removed", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  // The backfill's write is held until the removal and the forget happened: the interleaving
  // of two replicas sharing the index (one's search read the agent, then another's search
  // found it gone), driven in order rather than by timing.
  let reached = () => {};
  const atWrite = new Promise<void>((r) => {
    reached = r;
  });
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const gated = Object.create(redis) as typeof redis;
  gated.pipeline = () => {
    // Made on the gated connection, so it carries the commands the index defines on it.
    const pipeline = redis.pipeline.call(gated);
    const exec = pipeline.exec.bind(pipeline);
    pipeline.exec = async () => {
      reached();
      await held;
      return exec();
    };
    return pipeline;
  };
  const index = new AgentSearchIndex(gated, prefix, pino({ level: "silent" }));
  const [gone, kept] = [uid(11), uid(12)];
  for (const u of [gone, kept]) await redis.hset(`${prefix}:agent:${u}`, "connected", "1");
  const agent = (u: string) => fakeAgent(u, { "host.name": `host-${u.slice(-2)}` });
  // A search read both agents (no entry yet): their texts wait for the next write.
  index.remember([agent(gone), agent(kept)]);
  await atWrite;
  // Meanwhile the agent is removed, and another search that read its entry forgot it.
  await redis.hset(index.key, gone, searchText(agent(gone)));
  await redis.del(`${prefix}:agent:${gone}`);
  await index.forget([gone]);
  release();
  // Both texts go in one script: once the kept agent's entry is there, the write is done.
  await waitFor(
    "the stored agent indexed",
    async () => (await redis.hexists(index.key, kept)) === 1,
  );
  assert.equal(await redis.hexists(index.key, gone), 0, "the removed agent stays out of the index");
});

test("a description change is indexed from the agent events", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const index = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const events = new AgentEvents();
  defer(index.watch(events));
  const agent = fakeAgent(uid(7), { "host.name": "before" });
  const load = async () => [agent];
  assert.deepEqual(await search(index, "before", [uid(7)], load), [uid(7)]);
  const moved = fakeAgent(uid(7), { "host.name": "After-The-Move" });
  if (!moved.description) throw new Error("the fake agent has a description");
  events.emit("descriptionChanged", {
    instanceUid: uid(7),
    description: moved.description,
    agent: moved,
  });
  // An agent read from the store would still be the old one: only the event brings the change.
  const stale = async () => [agent];
  await waitFor(
    "the new text indexed",
    async () => (await search(index, "after-the-move", [uid(7)], stale)).length === 1,
  );
  assert.deepEqual(await search(index, "before", [uid(7)], stale), []);
});

test("with the fleet's key, changed agents' texts are computed in a worker, as views show them", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const index = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const events = new AgentEvents();
  const key = randomBytes(32);
  defer(index.watch(events, key));
  const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  const agents = [1, 2, 3].map((n) =>
    fakeAgent(uid(n), { "host.name": `Host-${n}`, "api.token": secret }),
  );
  for (const agent of agents) {
    if (!agent.description) throw new Error("the fake agent has a description");
    events.emit("descriptionChanged", {
      instanceUid: agent.instanceUid,
      description: agent.description,
      agent,
    });
  }
  await waitFor("the texts written", async () => (await redis.hlen(index.key)) === 3);
  const redactor = new Redactor(new Marker(key));
  for (const agent of agents) {
    const text = await redis.hget(index.key, agent.instanceUid);
    const expected = searchTextOf(
      { uid: agent.instanceUid, attributes: [...agentAttributes(agent)] },
      (k, v) => attributeView(redactor, k, v),
    );
    assert.equal(text, expected);
    assert.ok(!text?.includes(secret.slice(4, 20)), "the secret is not in the index");
  }
  assert.deepEqual(index.textStats, { inWorker: 3, here: 0 });
});

test("a redacted attribute value is not searchable", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const index = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  const agent = fakeAgent(uid(9), { "host.name": "visible-host", "api.token": secret });
  const load = async () => [agent];
  assert.deepEqual(await search(index, "visible-host", [uid(9)], load), [uid(9)]);
  assert.deepEqual(await search(index, secret.slice(0, 12), [uid(9)], load), []);
});

test("a change whose write failed is written again", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const log = capturedLogger("warn");
  const index = new AgentSearchIndex(redis, prefix, log.logger);
  const events = new AgentEvents();
  defer(index.watch(events));
  // A string where the hash belongs: every HSET fails (WRONGTYPE) until it is gone.
  await redis.set(index.key, "in the way");
  const agent = fakeAgent(uid(8), { "host.name": "Changed-Host" });
  if (!agent.description) throw new Error("the fake agent has a description");
  events.emit("descriptionChanged", {
    instanceUid: uid(8),
    description: agent.description,
    agent,
  });
  await waitFor("the failed write logged", () =>
    log.lines.some((l) => /agent search index not written/.test(String(l.msg))),
  );
  await redis.del(index.key);
  await waitFor(
    "the change written on retry",
    async () => (await redis.hget(index.key, uid(8)))?.includes("changed-host") === true,
  );
});

test("a write that fails after a newer one succeeded does not bring the older text back", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  // The first write's reply is held, then lost (as on a timeout or a reset connection): the
  // only fault a shared Redis cannot be made to produce here. Every other write is real.
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  let first = true;
  const flaky = Object.create(redis) as typeof redis;
  flaky.pipeline = () => {
    const pipeline = redis.pipeline();
    if (first) {
      first = false;
      pipeline.exec = async () => {
        await held;
        return [[new Error("connection reset"), null]];
      };
    }
    return pipeline;
  };
  const index = new AgentSearchIndex(flaky, prefix, pino({ level: "silent" }));
  const events = new AgentEvents();
  defer(index.watch(events));
  const change = (host: string) => {
    const agent = fakeAgent(uid(5), { "host.name": host });
    if (!agent.description) throw new Error("the fake agent has a description");
    events.emit("descriptionChanged", {
      instanceUid: uid(5),
      description: agent.description,
      agent,
    });
  };
  change("older-name");
  await new Promise((r) => setTimeout(r, 60)); // the first write is on its way (held)
  change("newer-name");
  await new Promise((r) => setTimeout(r, 60)); // a second window passed
  release();
  const text = async () => (await redis.hget(index.key, uid(5))) ?? "";
  await waitFor("the newer text written", async () => (await text()).includes("newer-name"));
  // Past the failed write's retry (RETRY_MS): the newer text stays.
  await new Promise((r) => setTimeout(r, 1500));
  assert.match(await text(), /newer-name/);
});

test("the index is keyed by the redaction rules its texts went through", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const index = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  assert.match(
    index.key,
    new RegExp(`^${prefix}:agent-search:v1:r${REDACTION_RULES_VERSION}-[0-9a-f]{12}$`),
  );
});
