/**
 * Errors logged by the service carry no agent secrets (src/logger.ts): the arguments ioredis
 * attaches to a failed command are dropped, and secrets quoted in a message or stack are
 * replaced. Checked through a real pino logger wrapped as the service wraps its own.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { withSafeErrors } from "../src/logger.js";
import { capturedLogger } from "./helpers/logger.js";

describe("service logs", () => {
  test("errors lose ioredis command arguments and quoted secrets", () => {
    const log = capturedLogger("debug");
    const logger = withSafeErrors(log.logger).child({ module: "opamp" });
    const err = new Error(
      'cannot apply: Authorization: Bearer LEAK903zz rejected by "https://u:LEAK777pw@h.example.com"',
    ) as Error & { command?: unknown };
    err.command = { name: "hset", args: ["p:agent:x", "health", "lastError: token=LEAK902tok"] };
    logger.error({ err }, "agent message failed");
    assert.equal(log.lines.length, 1);
    const text = JSON.stringify(log.lines[0]);
    assert.doesNotMatch(text, /LEAK\d{3}/);
    const logged = log.lines[0]?.err as { message: string; command: unknown; type: string };
    assert.deepEqual(logged.command, { name: "hset" }, "the command name stays");
    assert.match(logged.message, /^cannot apply: .*<redacted>/, "the message stays readable");
    assert.equal(logged.type, "Error");
  });
});
