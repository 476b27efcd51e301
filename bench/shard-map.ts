/**
 * The rollout state's membership map (src/queue/shard-map.ts): `npm run bench:shard-map`. Not
 * part of `npm test`. A group grows to N members in drafts of BATCH changes, as agents
 * connecting by the thousand are stepped in batches (src/queue/group-sync.ts), then every
 * member is changed twice more (connected, then APPLIED). Printed per group size: CPU µs per
 * changed key (best of 5 runs) and heap bytes per entry (key and value included, after GC), and
 * the ratio of the largest size's cost per key to the smallest's. An update copies one leaf of
 * ~N/1024 entries, so the cost grows slowly with N; the 64 flat shards before it copied N/64
 * (8.8 µs at 10,000 members, 153 µs at 100,000 on the machine the trie was measured on, where
 * the trie took 1.6 and 12).
 *
 * Environment: BENCH_SIZES=1000,10000,100000, BENCH_BATCH=10 (changes per draft, 100 at and
 * over 100,000 members, as the batch window fills faster there). Run with --expose-gc for the
 * heap figure.
 */
import { ShardMap } from "../src/queue/shard-map.js";

const SIZES = (process.env.BENCH_SIZES ?? "1000,10000,100000").split(",").map(Number);
const BATCH = Number(process.env.BENCH_BATCH ?? 10);
const PASSES = 3;
/** Changes per draft at `n` members: BATCH, at least 100 from 100,000 members on. */
const batchFor = (n: number) => (n >= 100_000 ? Math.max(BATCH, 100) : BATCH);
const key = (i: number) => `0192f3c4-${i.toString(16).padStart(8, "0")}-7abc-8def-0123456789ab`;

function grow(n: number, batch: number): ShardMap<{ pass: number; i: number }> {
  let map = ShardMap.empty<{ pass: number; i: number }>();
  for (let pass = 0; pass < PASSES; pass++) {
    for (let start = 0; start < n; start += batch) {
      const draft = map.edit();
      for (let i = start; i < Math.min(n, start + batch); i++) draft.set(key(i), { pass, i });
      map = draft.finish();
    }
  }
  return map;
}

function heapPerEntry(n: number, batch: number): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  // At least 100,000 entries held, so the figure is not lost in the heap's own noise.
  const copies = Math.ceil(100_000 / n);
  gc();
  const before = process.memoryUsage().heapUsed;
  const maps = Array.from({ length: copies }, () => grow(n, batch));
  gc();
  return (process.memoryUsage().heapUsed - before) / (copies * (maps[0]?.size ?? n));
}

// Heap first, on a fresh heap; then the timed runs.
const heap = new Map(SIZES.map((n) => [n, heapPerEntry(n, batchFor(n))]));
const rows: Array<{ n: number; micros: number; bytes: number | undefined }> = [];
for (const n of SIZES) {
  const batch = batchFor(n);
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    grow(n, batch);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000);
  }
  rows.push({ n, micros: best / (PASSES * n), bytes: heap.get(n) });
}

console.log("\nbench:shard-map — rollout membership map, copy-on-write per draft\n");
console.log("| members | changes per draft | CPU per changed key | heap per entry |");
console.log("|---|---|---|---|");
for (const { n, micros, bytes } of rows) {
  const batch = batchFor(n);
  const heap = bytes === undefined ? "n/a (run with --expose-gc)" : `${bytes.toFixed(0)} B`;
  console.log(`| ${n} | ${batch} | ${micros.toFixed(2)} µs | ${heap} |`);
}
const first = rows[0];
const last = rows.at(-1);
if (first && last && last !== first) {
  console.log(
    `\ncost per key at ${last.n} ÷ at ${first.n} members: ${(last.micros / first.micros).toFixed(2)}× (one leaf of ~N/1024 copied per key)`,
  );
}
