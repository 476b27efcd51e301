/**
 * agentCapabilityNames: what the status branch (unknown bits as bitN) and the API (named bits
 * only) show of an agent's capability word, the same for a word seen before (cached) as for
 * a new one, and unchanged by what a caller does to an array it got.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { AgentCapabilities, agentCapabilityNames } from "../../src/opamp/index.js";

/** The plain definition: every bit of 64, in order. */
function reference(word: bigint, unknownBits: boolean): string[] {
  const named = new Map<bigint, string>(Object.entries(AgentCapabilities).map(([n, b]) => [b, n]));
  const out: string[] = [];
  for (let i = 0n; i < 64n; i++) {
    if ((word & (1n << i)) === 0n) continue;
    const name = named.get(1n << i) ?? (unknownBits ? `bit${i}` : undefined);
    if (name) out.push(name);
  }
  return out;
}

test("named bits in bit order; unknown bits as bitN only when asked", () => {
  const word = AgentCapabilities.ReportsHealth | AgentCapabilities.ReportsStatus | (1n << 40n);
  assert.deepEqual(agentCapabilityNames(word), ["ReportsStatus", "ReportsHealth"]);
  assert.deepEqual(agentCapabilityNames(word, { unknownBits: true }), [
    "ReportsStatus",
    "ReportsHealth",
    "bit40",
  ]);
  assert.deepEqual(agentCapabilityNames(0n), []);
  assert.deepEqual(agentCapabilityNames(1n << 63n, { unknownBits: true }), ["bit63"]);
});

test("matches the plain definition for any uint64 word, asked twice (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.boolean(),
      (word, unknownBits) => {
        const expected = reference(word, unknownBits);
        const first = agentCapabilityNames(word, { unknownBits });
        assert.deepEqual(first, expected);
        first.push("mutated by the caller");
        assert.deepEqual(agentCapabilityNames(word, { unknownBits }), expected);
      },
    ),
    { numRuns: 2000 },
  );
});
