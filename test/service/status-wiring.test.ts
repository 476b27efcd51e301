/**
 * src/service/status-wiring.ts: the view of an agent a dead replica left "connected".
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { STALE_CONNECTION_MS, stale } from "../../src/service/status-wiring.js";

test("a stale connection is shown disconnected and keeps the agent's health", () => {
  const now = 10 * STALE_CONNECTION_MS;
  const agent = emptyAgentState("0190a000-0000-7000-8000-000000000001", "websocket", 1000);
  agent.connected = true;
  agent.health = { healthy: true, status: "StatusOK" } as typeof agent.health;
  const shown = stale(agent, now);
  assert.equal(shown?.connected, false);
  assert.equal(shown?.lastDisconnectedAt, 1000);
  assert.deepEqual(shown?.health, agent.health, "health is a getter on the state's prototype");
  assert.equal(agent.connected, true, "the stored state is left as it was");
  assert.equal(stale(agent, 2000), agent, "not stale yet: the state itself");
});
