/**
 * The status render worker threads: started on demand, stopped once idle (each holds tens of
 * MB that a replica which is not the status writer, or a quiet fleet, never uses), and
 * started again by the next render, which still succeeds.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AgentRenderer, type RenderJob, snapshot } from "../../src/status/agent-render.js";
import { waitFor } from "../helpers/wait.js";
import { fakeAgent, uidOf } from "./helpers.js";

function job(i: number): RenderJob {
  const uid = uidOf(i);
  return {
    uid,
    path: `status/agents/edge/${uid}.yaml`,
    placement: { group: "edge", desiredHash: null, desiredCommit: null },
    agent: snapshot(fakeAgent(uid)),
  };
}

async function renders(renderer: AgentRenderer, i: number): Promise<void> {
  const [result] = await renderer.render([job(i)]);
  assert.ok(result && "payload" in result, JSON.stringify(result));
  assert.ok(new TextDecoder().decode(result.payload).includes(uidOf(i)), "the agent's file");
}

test("an idle render worker stops, and the next render starts one again", async (t) => {
  const renderer = new AgentRenderer({}, 1, { idleMs: 300 });
  t.after(() => renderer.close());
  renderer.warm();
  assert.equal(renderer.workers, 1, "warmed");
  await renders(renderer, 1);
  await waitFor("the idle worker stopped", () => renderer.workers === 0, { timeoutMs: 10_000 });
  await renders(renderer, 2);
  assert.equal(renderer.workers, 1, "started again on demand");
});

test("a worker that rendered a big flush stops soon once idle (its garbage goes with it); the next render starts one again", async (t) => {
  // An idle minute otherwise: stopping within the wait below is the recycling.
  const renderer = new AgentRenderer({}, 1, {
    idleMs: 60_000,
    recycleAfter: 20,
    recycleIdleMs: 50,
  });
  t.after(() => renderer.close());
  await renders(renderer, 1);
  assert.equal(renderer.workers, 1);
  const big = await renderer.render(Array.from({ length: 20 }, (_, i) => job(i)));
  assert.equal(big.filter((r) => "payload" in r).length, 20);
  await waitFor("the recycled worker stopped", () => renderer.workers === 0, { timeoutMs: 10_000 });
  await renders(renderer, 2);
  assert.equal(renderer.workers, 1, "started again on demand");
});

test("a worker with requests in flight is not stopped for idleness", async (t) => {
  const renderer = new AgentRenderer({}, 1, { idleMs: 1 });
  t.after(() => renderer.close());
  // Requests one after another, each outliving the 1 ms idle delay of the previous answer's
  // gap: each either reuses the worker or starts a new one, and every one is answered.
  for (let i = 0; i < 5; i++) await renders(renderer, i);
  const many = await renderer.render(Array.from({ length: 50 }, (_, i) => job(i)));
  assert.equal(many.filter((r) => "payload" in r).length, 50);
});
