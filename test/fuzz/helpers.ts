/**
 * Shared parts of the fuzz tests: how many inputs (FUZZ_RUNS, default 10,000 per surface in
 * `npm test`; `npm run fuzz` raises it), the seed (FUZZ_SEED, default fixed, so every run of
 * `npm test` feeds the same inputs and a failure names the seed and index to replay), the
 * AgentToServer generator and its mutations, and a bounded-memory check.
 */
import fc from "fast-check";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { AgentStore } from "../../src/opamp/agent-store.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import type { DesiredStateProvider } from "../../src/opamp/desired.js";
import { AgentEvents } from "../../src/opamp/events.js";
import { MessageHandler } from "../../src/opamp/message-handler.js";
import type { AgentToServer, KeyValue } from "../../src/opamp/messages.js";

/**
 * A message handler of its own for inputs fed in process (no sockets): real Redis under
 * `prefix`, the given desired state; a failing event listener is logged at error level, which
 * the fuzz tests count as a failure.
 */
export function inProcessHandler(o: {
  redis: Redis;
  prefix: string;
  desired: DesiredStateProvider;
  logger: Logger;
  replicaId: string;
}): MessageHandler {
  return new MessageHandler({
    store: new AgentStore(o.redis, { prefix: o.prefix }),
    desired: o.desired,
    events: new AgentEvents((err) => o.logger.error({ err }, "listener failed")),
    logger: o.logger,
    replicaId: o.replicaId,
  });
}

/** Inputs per surface. */
export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 10_000));
/** Seed of every generator; printed with each failure. */
export const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);

/** Instance uids come from a small pool, so Redis and the live-agent map stay bounded. */
export const UID_POOL = 48;
export function poolUid(i: number): Uint8Array {
  const uid = new Uint8Array(16);
  uid[0] = 0xf0;
  uid[15] = i % UID_POOL;
  return uid;
}

const text = (max: number) => fc.string({ maxLength: max, unit: "binary" });
const keyValue: fc.Arbitrary<KeyValue> = fc.record({
  key: text(24),
  value: fc.oneof(
    fc.record({ stringValue: text(48) }),
    fc.record({ boolValue: fc.boolean() }),
    fc.record({ intValue: fc.integer() }),
    fc.record({ doubleValue: fc.double() }),
    fc.record({ bytesValue: fc.uint8Array({ maxLength: 32 }) }),
    fc.record({
      arrayValue: fc.record({
        values: fc.array(fc.record({ stringValue: text(8) }), { maxLength: 3 }),
      }),
    }),
  ),
});
const attributes = fc.array(keyValue, { maxLength: 6 });
const health = fc.record(
  {
    healthy: fc.boolean(),
    status: text(16),
    lastError: text(64),
    componentHealthMap: fc.dictionary(
      text(12),
      fc.record({ healthy: fc.boolean(), status: text(8) }, { requiredKeys: [] }),
      { maxKeys: 4 },
    ),
  },
  { requiredKeys: [] },
);
const configFile = fc.record({
  body: fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    fc
      .constantFrom("receivers: {otlp: {}}\n", "a: 1\na: 2\n", "{", "- [\n", "key: &a [*a]\n")
      .map((s) => Buffer.from(s)),
  ),
  contentType: fc.constantFrom("text/yaml", "application/json", "", "x/unknown"),
});

/** AgentToServer messages a real agent could send, and some it should not. */
export function agentToServer(): fc.Arbitrary<Partial<AgentToServer>> {
  return fc.record(
    {
      instanceUid: fc.oneof(
        { weight: 8, arbitrary: fc.nat(UID_POOL - 1).map(poolUid) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) },
      ),
      sequenceNum: fc.oneof(fc.bigInt(0n, 5n), fc.bigInt(0n, (1n << 64n) - 1n)),
      capabilities: fc.bigInt(0n, (1n << 64n) - 1n),
      flags: fc.oneof(fc.constant(0n), fc.constant(1n), fc.bigInt(0n, (1n << 64n) - 1n)),
      agentDescription: fc.record(
        { identifyingAttributes: attributes, nonIdentifyingAttributes: attributes },
        { requiredKeys: [] },
      ),
      health,
      effectiveConfig: fc.record({
        configMap: fc.record({ configMap: fc.dictionary(text(16), configFile, { maxKeys: 3 }) }),
      }),
      remoteConfigStatus: fc.record(
        {
          lastRemoteConfigHash: fc.uint8Array({ maxLength: 40 }),
          status: fc.integer({ min: -1, max: 5 }),
          errorMessage: text(64),
        },
        { requiredKeys: [] },
      ),
      agentDisconnect: fc.constant({}),
      customCapabilities: fc.record({ capabilities: fc.array(text(16), { maxLength: 4 }) }),
    },
    { requiredKeys: ["instanceUid", "sequenceNum", "capabilities", "flags"] },
  );
}

/** Ways to break an encoded message: structure-aware (protobuf-shaped) and blind. */
export type Mutation =
  | { kind: "none" }
  | { kind: "flip"; at: number; xor: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "concat" } // the message twice: protobuf merges repeated fields
  | { kind: "field"; bytes: Uint8Array } // an appended field of a random tag and wire type
  | { kind: "length"; at: number; big: boolean }; // a length prefix pointing past the end

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("concat" as const) }),
  fc.record({
    kind: fc.constant("field" as const),
    bytes: fc
      .tuple(
        fc.integer({ min: 1, max: 2047 }),
        fc.integer({ min: 0, max: 7 }),
        fc.uint8Array({ maxLength: 12 }),
      )
      .map(([field, wire, rest]) => Uint8Array.from([...varint((field << 3) | wire), ...rest])),
  }),
  fc.record({ kind: fc.constant("length" as const), at: fc.nat(), big: fc.boolean() }),
);

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

export function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.length;
  switch (m.kind) {
    case "none":
      return bytes;
    case "flip": {
      if (n === 0) return bytes;
      const out = Uint8Array.from(bytes);
      out[m.at % n] = (out[m.at % n] as number) ^ m.xor;
      return out;
    }
    case "truncate":
      return bytes.subarray(0, n === 0 ? 0 : m.at % n);
    case "insert": {
      const at = n === 0 ? 0 : m.at % (n + 1);
      return Uint8Array.from([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)]);
    }
    case "concat":
      return Uint8Array.from([...bytes, ...bytes]);
    case "field":
      return Uint8Array.from([...bytes, ...m.bytes]);
    case "length": {
      // A length-delimited field (wire type 2) with a length far beyond the bytes present.
      const at = n === 0 ? 0 : m.at % (n + 1);
      const len = varint(m.big ? 0x7fffffff : n + 17);
      return Uint8Array.from([...bytes.subarray(0, at), 0x1a, ...len, ...bytes.subarray(at)]);
    }
  }
}

/** One AgentToServer input: structurally mutated (mostly) or random bytes. */
export interface AgentInput {
  bytes: Uint8Array;
  /** The message before mutation, when the bytes were not mutated (a well-formed request). */
  wellFormed: Partial<AgentToServer> | undefined;
}

export const agentInput: fc.Arbitrary<AgentInput> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(agentToServer(), mutation).map(([message, m]) => ({
      bytes: mutate(encodeAgentToServer(message), m),
      wellFormed: m.kind === "none" ? message : undefined,
    })),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ bytes, wellFormed: undefined })),
  },
);

/** `count` inputs of `arb`, the same for the same seed. */
export function inputs<T>(arb: fc.Arbitrary<T>, count: number, seed = SEED): T[] {
  return fc.sample(arb, { numRuns: count, seed });
}

/** Runs `fn` over `items` with at most `concurrency` in flight; rejects on the first failure. */
export async function forEachConcurrent<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        throw new Error(`fuzz input #${i} (FUZZ_SEED=${SEED}) failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Resident memory in MiB. */
export const rssMiB = () => process.memoryUsage().rss / 1024 / 1024;

/** Bound on how much the process may grow over one surface's run (MiB). */
export const MAX_GROWTH_MIB = 256;
