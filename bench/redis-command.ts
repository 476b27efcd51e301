/**
 * RESP encoding of an agent save (src/redis-command.ts): `npm run bench:redis-command`. Not
 * part of `npm test`. An HSET as AgentStore.save sends it (11 scalar fields as strings, three
 * encoded reports as Buffers), encoded by ioredis' Command.toWritable and by encodeCommand;
 * prints CPU µs per save for each (best of 5 runs of BENCH_SAVES=20000) and the ratio.
 */
import { Command } from "ioredis";
import { encodeCommand } from "../src/redis-command.js";

const SAVES = Number(process.env.BENCH_SAVES ?? 20_000);

function saveArgs(i: number): Array<string | Buffer> {
  return [
    `opamp-gitops:agent:0192f3c4-${String(i).padStart(4, "0")}-7abc-8def-0123456789ab`,
    ...["seq", String(i), "caps", "8191", "transport", "ws", "connected", "1"],
    ...[
      "lastConnectedAt",
      "1733345000000",
      "lastDisconnectedAt",
      "",
      "lastSeenAt",
      "1733345000123",
    ],
    ...["offeredSettings", "", "scopes", "", "credential", "", "owner", `r-abc/${i}`],
    ...["health", Buffer.alloc(120, 1), "description", Buffer.alloc(600, 2)],
    ...["remoteConfigStatus", Buffer.alloc(40, 3)],
  ];
}

type Encodable = { toWritable(): string | Buffer; name: string; args: Array<string | Buffer> };

function bestMicros(encode: (c: Encodable) => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const commands = Array.from(
      { length: SAVES },
      (_, i) => new Command("hset", saveArgs(i)) as unknown as Encodable,
    );
    const t0 = process.hrtime.bigint();
    for (const c of commands) encode(c);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000 / SAVES);
  }
  return best;
}

const theirs = bestMicros((c) => c.toWritable());
const ours = bestMicros((c) => encodeCommand(c));
console.log("\nbench:redis-command — one agent save (HSET, 11 strings + 3 Buffers) as RESP\n");
console.log(`ioredis Command.toWritable: ${theirs.toFixed(2)} µs per save`);
console.log(`encodeCommand:              ${ours.toFixed(2)} µs per save`);
console.log(`ratio: ${(ours / theirs).toFixed(2)}× (target < 1)`);
