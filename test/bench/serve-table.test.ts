/**
 * bench:serve's table: one round prints the figures and ratios as read; several print each
 * figure's median and range and each ratio as the median of the rounds' own ratios (what the
 * README's verdicts are read from).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Figures, median, type Round, table } from "../../bench/serve-table.js";

function figures(name: string, over: Partial<Figures>): Figures {
  return {
    name,
    connectMs: 2000,
    settled: 100,
    heartbeatsPerSecond: 30_000,
    rssPerAgentBytes: 22 * 1024,
    rssQuietPerAgentBytes: 22 * 1024,
    stormMs: 1000,
    stormSettled: 100,
    stormShed: 0,
    stormCpuMicros: 600,
    restartReadyMs: 1500,
    coldStormMs: 2500,
    coldStormSettled: 100,
    coldStormShed: 0,
    coldStormCpuMicros: 900,
    connectCpuMicros: 300,
    connectUserMicros: 250,
    connectLoadCpuMicros: 800,
    connectMachineBusy: 0.97,
    heartbeatCpuMicros: 20,
    connectWrites: 3,
    connectFaults: 4,
    heartbeatWrites: 1,
    ...over,
  };
}

const OPTIONS = { agents: 100, heading: "from 1 agent process", quietSeconds: 15 };
const row = (lines: string[], label: string) =>
  lines.find((l) => l.startsWith(`| ${label} |`))?.split(" | ");

test("median: the middle value, or the mean of the middle two", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test("one round prints each figure and ratio as read", () => {
  const lines = table(
    [
      {
        peer: figures("peer", {}),
        serves: [
          figures("serve --workers 1", {
            connectMs: 3000,
            heartbeatsPerSecond: 24_000,
            connectFaults: 6,
            connectUserMicros: 500,
            connectRenderCpuMicros: 900,
            connectMainThreadMicros: 420,
            connectRedisCpuMicros: 150,
            connectLoadCpuMicros: 880,
            statusCommitsInConnect: 1,
            coldStormMs: 5000,
            coldStormShed: 7,
          }),
        ],
      },
    ],
    OPTIONS,
  );
  assert.deepEqual(row(lines, "connect + first config to all 100"), [
    "| connect + first config to all 100",
    "2.00 s",
    "3.00 s",
    "1.50× (target ≤ 1.0) |",
  ]);
  assert.equal(row(lines, "heartbeat replies per second")?.[3], "0.80× (target ≥ 1.0) |");
  assert.deepEqual(row(lines, "page faults per agent connected")?.slice(1), [
    "4.0",
    "6.0",
    "1.50× |",
  ]);
  assert.deepEqual(row(lines, "of it in user mode (rest: kernel)")?.slice(1), [
    "250 µs",
    "500 µs",
    "2.00× |",
  ]);
  // serve's own figures: the peer renders no status and prints n/a.
  assert.deepEqual(row(lines, "CPU per agent until its status was rendered")?.slice(1, 3), [
    "n/a",
    "900 µs",
  ]);
  assert.deepEqual(row(lines, "status commits in the connect window")?.slice(1, 3), ["n/a", "1"]);
  assert.deepEqual(row(lines, "of it on the event loops (rest: other threads)")?.slice(1, 3), [
    "n/a",
    "420 µs",
  ]);
  // What shared the cores in the connect window: the load (both sides), Redis (serve only).
  assert.deepEqual(row(lines, "CPU per agent of the agent processes (the load)")?.slice(1), [
    "800 µs",
    "880 µs",
    "1.10× |",
  ]);
  assert.deepEqual(row(lines, "CPU per agent of Redis")?.slice(1, 3), ["n/a", "150 µs"]);
  assert.deepEqual(row(lines, "machine busy in the connect window (all cores)")?.slice(1, 3), [
    "97 %",
    "97 %",
  ]);
  // The restart storm (a new, cold process) beside the reconnect storm.
  assert.deepEqual(row(lines, "restart storm (new process): all 100 answered again")?.slice(1), [
    "2.50 s",
    "5.00 s",
    "2.00× |",
  ]);
  assert.deepEqual(row(lines, "agents shed and retried in the restart storm")?.slice(1, 3), [
    "0",
    "7",
  ]);
  assert.ok(!lines.some((l) => l.includes("rounds:")));
});

test("over rounds: medians with ranges, and each ratio the median of the rounds' own", () => {
  // The machine is twice as fast in round 2: both sides' figures halve, the ratio holds.
  const rounds: Round[] = [
    { peer: figures("peer", { connectMs: 2000 }), serves: [figures("serve", { connectMs: 3000 })] },
    { peer: figures("peer", { connectMs: 1000 }), serves: [figures("serve", { connectMs: 1500 })] },
    { peer: figures("peer", { connectMs: 4000 }), serves: [figures("serve", { connectMs: 8000 })] },
  ];
  const lines = table(rounds, OPTIONS);
  const connect = row(lines, "connect + first config to all 100");
  assert.equal(connect?.[1], "2.00 s (1.00 s–4.00 s)");
  assert.equal(connect?.[2], "3.00 s (1.50 s–8.00 s)");
  // Ratios 1.5, 1.5, 2.0: median 1.5 (the ratio of the medians would also be 1.5 here, but
  // the range shows the round where serve fell behind).
  assert.equal(connect?.[3], "1.50× (1.50×–2.00×) (target ≤ 1.0) |");
  assert.match(lines[1] ?? "", /3 rounds: medians \(range\)/);
});

test("the ratio is paired per round, not the ratio of the medians", () => {
  // Ratios 1.0, 2.5, 1.1: median 1.1; the medians (peer 2000, serve 3300) would say 1.65.
  const rounds: Round[] = [
    { peer: figures("peer", { connectMs: 1000 }), serves: [figures("s", { connectMs: 1000 })] },
    { peer: figures("peer", { connectMs: 2000 }), serves: [figures("s", { connectMs: 5000 })] },
    { peer: figures("peer", { connectMs: 3000 }), serves: [figures("s", { connectMs: 3300 })] },
  ];
  const connect = row(table(rounds, OPTIONS), "connect + first config to all 100");
  assert.equal(connect?.[3], "1.10× (1.00×–2.50×) (target ≤ 1.0) |");
});

test("a server that configured too few agents is named, with its round", () => {
  const lines = table(
    [
      { peer: figures("peer", {}), serves: [figures("serve", {})] },
      { peer: figures("peer", {}), serves: [figures("serve", { settled: 90 })] },
      { peer: figures("peer", {}), serves: [figures("serve", { coldStormSettled: 80 })] },
    ],
    OPTIONS,
  );
  assert.ok(
    lines.includes(
      "! serve (round 2): only 90 configured, 100 after the storm, 100 after the restart",
    ),
    lines.join("\n"),
  );
  assert.ok(
    lines.includes(
      "! serve (round 3): only 100 configured, 100 after the storm, 80 after the restart",
    ),
    lines.join("\n"),
  );
});
