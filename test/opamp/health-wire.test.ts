/**
 * Health read on the wire (src/opamp/health-wire.ts): the meaning digest ignores timestamps
 * and map order and sees every other change; the scan counts and checks what protobufjs would
 * decode, and refuses malformed encodings with the error agents are answered with; hostile
 * trees (deep, wide, mutated) are bounded.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DEFAULT_AGENT_LIMITS } from "../../src/opamp/agent-limits.js";
import { decodeSubMessage, encodeAgentToServer, encodeSubMessage } from "../../src/opamp/codec.js";
import { MalformedMessageError } from "../../src/opamp/errors.js";
import { healthDigest, healthTop, scanHealth } from "../../src/opamp/health-wire.js";
import type { ComponentHealth } from "../../src/opamp/messages.js";
import { prepareMessage } from "../../src/opamp/prepare.js";
import { healthAt, reversed } from "../helpers/collector-health.js";

const at = healthAt;
const enc = (h: ComponentHealth) => encodeSubMessage("ComponentHealth", h);
const digest = (h: ComponentHealth) => healthDigest(enc(h));

/** Nodes of a decoded tree, the root included. */
function count(h: ComponentHealth): number {
  let n = 1;
  for (const c of Object.values(h.componentHealthMap ?? {})) n += count(c);
  return n;
}

// Protobuf wire helpers for encodings protobufjs would not write.
const varint = (n: number) => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const delimited = (field: number, body: number[]) => [
  ...varint(field * 8 + 2),
  ...varint(body.length),
  ...body,
];
const text = (s: string) => [...Buffer.from(s)];
const entry = (key: string, value?: number[]) =>
  delimited(6, [...delimited(1, text(key)), ...(value ? delimited(2, value) : [])]);

describe("health meaning on the wire", () => {
  test("timestamps and map order do not change the meaning", () => {
    assert.equal(digest(at(1)), digest(at(2)));
    assert.equal(digest(at(1)), digest(reversed(at(9))));
    assert.equal(digest({ ...at(1), startTimeUnixNano: 5 }), digest(at(1)));
  });

  test("healthy, status, last error, attributes and the component tree do", () => {
    const base = digest(at(1));
    const broken = at(1, {
      "pipeline:traces/exporter:otlp": ["StatusRecoverableError", "connection refused"],
    });
    assert.notEqual(digest(broken), base);
    const otherError = at(1, {
      "pipeline:traces/exporter:otlp": ["StatusRecoverableError", "deadline exceeded"],
    });
    assert.notEqual(digest(otherError), digest(broken), "last_error");
    assert.notEqual(digest({ ...at(1), healthy: false }), base, "healthy");
    assert.notEqual(digest({ ...at(1), status: "StatusStarting" }), base, "status");
    const withAttribute = { ...at(1), attributes: [{ key: "k", value: { stringValue: "v" } }] };
    assert.notEqual(digest(withAttribute), base, "attributes");
    const fewer = at(1);
    delete fewer.componentHealthMap?.["pipeline:logs"];
    assert.notEqual(digest(fewer), base, "a pipeline gone");
    // A key moved to another parent, the same bytes otherwise, is another tree.
    const moved = at(1);
    const pipelines = moved.componentHealthMap as Record<string, ComponentHealth>;
    const logs = pipelines["pipeline:logs"] as ComponentHealth;
    (pipelines["pipeline:traces"] as ComponentHealth).componentHealthMap = {
      ...(pipelines["pipeline:traces"] as ComponentHealth).componentHealthMap,
      "pipeline:logs": logs,
    };
    delete pipelines["pipeline:logs"];
    assert.notEqual(digest(moved), base, "a component moved");
  });

  test("a field or key sent twice keeps its last value; a default sent equals one left out", () => {
    const ok = [...delimited(4, text("StatusOK"))];
    const twice = Buffer.from([...delimited(4, text("StatusStarting")), ...ok]);
    assert.equal(healthDigest(twice), healthDigest(Buffer.from(ok)));
    const keyTwice = Buffer.from([
      ...entry("a", delimited(4, text("StatusStarting"))),
      ...entry("b", ok),
      ...entry("a", ok),
    ]);
    const once = Buffer.from([...entry("b", ok), ...entry("a", ok)]);
    assert.equal(healthDigest(keyTwice), healthDigest(once));
    // healthy = false and status = "" written out, as some encoders do.
    const defaults = Buffer.from([0x08, 0x00, ...delimited(4, []), ...ok]);
    assert.equal(healthDigest(defaults), healthDigest(Buffer.from(ok)));
    // A map entry without a value is an empty component.
    assert.equal(healthDigest(Buffer.from(entry("a"))), healthDigest(Buffer.from(entry("a", []))));
  });

  test("property: any tree means the same with new timestamps and maps in reverse order", () => {
    const node: fc.Memo<ComponentHealth> = fc.memo((n) =>
      fc.record(
        {
          healthy: fc.boolean(),
          status: fc.constantFrom("StatusOK", "StatusStarting", "StatusRecoverableError"),
          lastError: fc.string({ maxLength: 8 }),
          statusTimeUnixNano: fc.integer({ min: 0, max: 2 ** 31 }),
          componentHealthMap:
            n > 1
              ? fc.dictionary(fc.string({ maxLength: 6 }), node(n - 1), { maxKeys: 3 })
              : fc.constant({}),
        },
        { requiredKeys: ["healthy"] },
      ),
    );
    const retimed = (h: ComponentHealth): ComponentHealth => ({
      ...h,
      statusTimeUnixNano: 42,
      componentHealthMap: Object.fromEntries(
        Object.entries(h.componentHealthMap ?? {}).map(([k, c]) => [k, retimed(c)]),
      ),
    });
    fc.assert(
      fc.property(node(4), (h) => {
        const bytes = enc(h);
        assert.equal(healthDigest(enc(reversed(retimed(h)))), healthDigest(bytes));
        assert.equal(scanHealth(bytes, 10_000, 4096).components, count(h));
        const top = healthTop(bytes);
        assert.equal(top.healthy, h.healthy === true);
        assert.equal(top.lastError, h.lastError ?? "");
      }),
      { numRuns: 300 },
    );
  });

  test("a hostile, deeply nested tree is bounded", () => {
    /** A chain of `levels` components below the root, built on the wire (encoders cap depth). */
    const chain = (levels: number) => {
      let bytes = delimited(4, text("StatusOK"));
      for (let i = 0; i < levels; i++) bytes = entry("c", bytes);
      return Buffer.from(bytes);
    };
    // Past depth 32 components count as present: the meaning's work and size stay bounded.
    assert.equal(healthDigest(chain(60)), healthDigest(chain(61)));
    assert.notEqual(healthDigest(chain(20)), healthDigest(chain(21)));
    // As deep as protobufjs decodes a report, and no deeper: stored health must decode.
    assert.equal(scanHealth(chain(99), 100_000, 4096).components, 100);
    decodeSubMessage("ComponentHealth", chain(99));
    assert.throws(() => scanHealth(chain(100), 100_000, 4096), /nested deeper than 99/);
    assert.throws(() => scanHealth(chain(5_000), 100_000, 4096), MalformedMessageError);
    // Groups in unknown fields: nested as deep as protobufjs skips them, and no deeper.
    const groups = (n: number) =>
      Buffer.from([
        ...Array(n)
          .fill(varint(20 * 8 + 3))
          .flat(),
        ...Array(n)
          .fill(varint(20 * 8 + 4))
          .flat(),
      ]);
    assert.equal(scanHealth(groups(100), 1024, 4096).components, 1);
    assert.throws(() => scanHealth(groups(101), 1024, 4096), /groups nested too deep/);
  });
});

describe("health scan", () => {
  test("counts components and stops at the first one past the limit", () => {
    assert.deepEqual(scanHealth(enc(at(1)), 1024, 4096), { components: 18, needsDecode: false });
    assert.equal(scanHealth(enc(at(1)), 10, 4096).components, 11);
  });

  test("sends attributes and over-long text to the decoded check", () => {
    const withAttribute = { ...at(1), attributes: [{ key: "k", value: { stringValue: "v" } }] };
    assert.equal(scanHealth(enc(withAttribute), 1024, 4096).needsDecode, true);
    const long = at(1, {
      "pipeline:logs/exporter:debug": ["StatusPermanentError", "x".repeat(200)],
    });
    assert.equal(scanHealth(enc(long), 1024, 100).needsDecode, true);
    assert.equal(scanHealth(enc(long), 1024, 200).needsDecode, false);
  });

  test("malformed encodings are refused with OPAMP_MALFORMED_MESSAGE", () => {
    // [what, bytes, whether the fault is in the root's own fields (healthTop reads only those)]
    const cases: [string, number[], boolean][] = [
      ["truncated length", [...varint(4 * 8 + 2), 10, 65], true],
      ["status as a varint", [...varint(4 * 8), 1], true],
      ["field number 0", [0x02, 0x00], true],
      ["wire type 7", [0x0f], true],
      ["end group without start", [...varint(9 * 8 + 4)], true],
      ["an entry's value as a varint", delimited(6, [...varint(2 * 8), 1]), false],
      ["a nested component truncated", entry("a", [...varint(3 * 8 + 2), 5]), false],
    ];
    for (const [what, bytes, root] of cases) {
      const b = Buffer.from(bytes);
      const reads: Array<() => unknown> = [() => scanHealth(b, 1024, 4096), () => healthDigest(b)];
      if (root) reads.push(() => healthTop(b));
      for (const read of reads)
        assert.throws(read, (err: unknown) => {
          assert.ok(err instanceof MalformedMessageError, `${what}: ${String(err)}`);
          assert.equal(err.code, "OPAMP_MALFORMED_MESSAGE");
          assert.match(err.message, /^health is not valid protobuf: /);
          return true;
        });
    }
  });

  test("unknown fields and groups are skipped", () => {
    const ok = delimited(4, text("StatusOK"));
    const extra = Buffer.from([
      ...varint(20 * 8 + 3),
      ...varint(21 * 8),
      5,
      ...varint(20 * 8 + 4),
      ...varint(22 * 8 + 5),
      1,
      2,
      3,
      4,
      ...ok,
    ]);
    assert.equal(scanHealth(extra, 1024, 4096).components, 1);
    assert.equal(healthDigest(extra), healthDigest(Buffer.from(ok)));
  });

  test("fuzz: mutated reports are read or refused, never anything else, and what the scan accepts decodes", () => {
    const base = enc(
      at(1, { "pipeline:traces/exporter:otlp": ["StatusRecoverableError", "boom"] }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(base.length),
        (flips, cutAt) => {
          const bytes = Buffer.from(base.subarray(0, Math.max(1, cutAt)));
          for (const [i, v] of flips) if (i < bytes.length) bytes[i] = v;
          let scanned: { components: number; needsDecode: boolean } | undefined;
          try {
            scanned = scanHealth(bytes, 1024, 4096);
          } catch (err) {
            assert.ok(err instanceof MalformedMessageError, String(err));
            return;
          }
          // Attributes (not read by the scan) and over-long text: prepare decodes in full, and
          // protobufjs decides.
          if (scanned.needsDecode) return;
          // Stored health is decoded when read (API, status files): it must decode.
          const decoded = decodeSubMessage<ComponentHealth>("ComponentHealth", bytes);
          assert.ok(scanned.components >= count(decoded));
          healthDigest(bytes);
          healthTop(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("health in a prepared message", () => {
  const uid = new Uint8Array(16).fill(7);
  const head = Buffer.from(
    encodeAgentToServer({ instanceUid: uid, sequenceNum: 1n, capabilities: 1n }),
  );
  /** AgentToServer field 5 (health) holding `body`, appended to the message head. */
  const withHealth = (...bodies: number[][]) =>
    Buffer.concat([head, ...bodies.map((b) => Buffer.from(delimited(5, b)))]);
  const ok = [...enc(at(1))];

  test("health sent twice: the full decode decides, as it always did", () => {
    // The first copy is malformed (wire type 7): refused though the last is fine.
    assert.throws(
      () => prepareMessage(withHealth([0x0f], ok), DEFAULT_AGENT_LIMITS),
      (err: unknown) =>
        err instanceof MalformedMessageError &&
        /^AgentToServer is not valid protobuf/.test(err.message),
    );
    // Both well-formed: the last is stored, encoded again from what was decoded.
    const broken = [
      ...enc(at(2, { "pipeline:logs/exporter:debug": ["StatusPermanentError", "x"] })),
    ];
    const prepared = prepareMessage(withHealth(ok, broken), DEFAULT_AGENT_LIMITS);
    assert.equal(
      healthDigest(prepared.encoded.health as Uint8Array),
      healthDigest(Buffer.from(broken)),
    );
  });

  test("a component's value sent twice in its map entry: the full decode decides", () => {
    const good = [...enc(at(1))];
    // The first copy is malformed (wire type 7): refused though the last is fine.
    const twice = (first: number[]) =>
      delimited(6, [
        ...delimited(1, text("extensions")),
        ...delimited(2, first),
        ...delimited(2, good),
      ]);
    assert.throws(() => scanHealth(Buffer.from(twice(good)), 1024, 4096), MalformedMessageError);
    assert.throws(
      () => prepareMessage(withHealth(twice([0x0f])), DEFAULT_AGENT_LIMITS),
      (err: unknown) =>
        err instanceof MalformedMessageError &&
        /^AgentToServer is not valid protobuf/.test(err.message),
    );
    // Both well-formed: stored as decoded, the last copy kept.
    const other = [
      ...enc(at(2, { "pipeline:logs/exporter:debug": ["StatusPermanentError", "x"] })),
    ];
    const stored = prepareMessage(withHealth(twice(other)), DEFAULT_AGENT_LIMITS).encoded
      .health as Uint8Array;
    const decoded = decodeSubMessage<ComponentHealth>("ComponentHealth", stored);
    assert.equal(decoded.componentHealthMap?.extensions?.healthy, true);
    assert.equal(healthDigest(stored), healthDigest(Buffer.from(twice(good))));
  });

  test("a tag the scan refuses but protobufjs reads is decoded in full, not refused", () => {
    // Field 4 (status) with its tag padded to 6 bytes: protobufjs reads 32 bits of it.
    const padded = [0xa2, 0x80, 0x80, 0x80, 0x80, 0x00, 2, 79, 75];
    assert.throws(() => scanHealth(Buffer.from(padded), 1024, 4096), MalformedMessageError);
    let decoded: ComponentHealth | undefined;
    try {
      decoded = decodeSubMessage<ComponentHealth>("ComponentHealth", Buffer.from(padded));
    } catch {
      decoded = undefined;
    }
    const prepare = () => prepareMessage(withHealth(padded), DEFAULT_AGENT_LIMITS);
    if (decoded === undefined) assert.throws(prepare, MalformedMessageError);
    else {
      const stored = prepare().encoded.health as Uint8Array;
      // Stored as it decodes: the scan reads it now, and it means what protobufjs read.
      assert.equal(scanHealth(stored, 1024, 4096).components, 1);
      assert.deepEqual(decodeSubMessage("ComponentHealth", stored), decoded);
    }
  });

  test("attributes and over-long text go through the decoded check and cut", () => {
    const long = enc(
      at(1, { "pipeline:logs/exporter:debug": ["StatusPermanentError", "e".repeat(10_000)] }),
    );
    const prepared = prepareMessage(withHealth([...long]), DEFAULT_AGENT_LIMITS);
    const stored = decodeSubMessage<ComponentHealth>(
      "ComponentHealth",
      prepared.encoded.health as Uint8Array,
    );
    const cut =
      stored.componentHealthMap?.["pipeline:logs"]?.componentHealthMap?.["exporter:debug"];
    assert.ok(
      cut?.lastError &&
        Buffer.byteLength(cut.lastError) <= DEFAULT_AGENT_LIMITS.maxErrorMessageBytes + 64,
    );
    assert.ok(cut.lastError.length < 10_000, "last_error cut to the limit");
    // Attributes the scan does not read: malformed ones are refused by the decoded check.
    assert.throws(
      () => prepareMessage(withHealth([...ok, ...delimited(7, [0x0f])]), DEFAULT_AGENT_LIMITS),
      (err: unknown) =>
        err instanceof MalformedMessageError &&
        /^AgentToServer is not valid protobuf: health/.test(err.message),
    );
  });
});
