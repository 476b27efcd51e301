/**
 * servedChanges (serve.ts): what a reload pushes to. Its contract: every agent whose answer
 * or membership differs between the two states is named (or "all"), and "all" only when the
 * group's answer moved, so that two writers crossing do not push to the whole group.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GroupRollout } from "../../src/queue/model.js";
import { servedChanges, servedRef } from "../../src/queue/serve.js";
import { MachineSim, policy, uids } from "./helpers/machine.js";

const A = "a".repeat(64);
const B = "b".repeat(64);

/** Agents whose membership or served hash differ between the two states. */
function differing(before: GroupRollout, after: GroupRollout): string[] {
  const all = new Set([...before.members.keys(), ...after.members.keys()]);
  return [...all]
    .filter(
      (u) =>
        before.members.has(u) !== after.members.has(u) ||
        servedRef(before, u)?.hash !== servedRef(after, u)?.hash,
    )
    .sort();
}

/** Checks the contract for one step of `sim`, then returns what servedChanges said. */
function stepped(sim: MachineSim, run: () => void): "all" | string[] | undefined {
  const before = sim.state;
  run();
  const got = servedChanges(before, sim.state);
  if (got !== "all") {
    const named = new Set(got ?? []);
    for (const u of differing(before, sim.state)) assert.ok(named.has(u), `${u} not named`);
  }
  return got === "all" ? got : got?.sort();
}

describe("servedChanges", () => {
  test("joins and leaves name their agents; health and reports name none", () => {
    const sim = new MachineSim();
    sim.fleet(uids(10));
    sim.commit(A, policy({ stages: [{ percent: 100, pauseMs: 0 }] }));
    sim.applyAll(A);
    assert.equal(sim.state.stable?.hash, A);
    assert.deepEqual(
      stepped(sim, () => sim.fleet(["new-1", "new-2"])),
      ["new-1", "new-2"],
    );
    assert.deepEqual(
      stepped(sim, () => sim.send({ type: "leave", uid: "new-1" })),
      ["new-1"],
    );
    assert.equal(
      stepped(sim, () => sim.send({ type: "health", uid: "new-2", healthy: false })),
      undefined,
    );
    assert.equal(
      stepped(sim, () => sim.send({ type: "report", uid: "new-2", hash: A, status: "APPLIED" })),
      undefined,
    );
  });

  test("a rollout that starts, a stage that advances and a rollback are the whole group", () => {
    const sim = new MachineSim();
    sim.fleet(uids(20));
    sim.commit(A, policy({ stages: [{ percent: 100, pauseMs: 0 }] }));
    sim.applyAll(A);
    assert.equal(
      stepped(sim, () => sim.commit(B)),
      "all",
    );
    assert.equal(
      stepped(sim, () => sim.applyAll(B)),
      "all",
      "next stage",
    );
    const cohort = sim.cohort()[0] ?? "";
    assert.equal(
      stepped(sim, () => sim.send({ type: "report", uid: cohort, hash: B, status: "FAILED" })),
      "all",
      "rolled back",
    );
    assert.equal(sim.served(cohort), A);
  });

  test("a join while a rollout is in flight names the agent, whichever hash it gets", () => {
    const sim = new MachineSim();
    sim.fleet(uids(20));
    sim.commit(A, policy({ stages: [{ percent: 100, pauseMs: 0 }] }));
    sim.applyAll(A);
    sim.commit(B);
    const joined = uids(40, "late");
    assert.deepEqual(
      stepped(sim, () => sim.fleet(joined)),
      joined,
    );
    assert.ok(joined.some((u) => sim.served(u) === B) && joined.some((u) => sim.served(u) === A));
  });
});
