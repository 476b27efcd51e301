/**
 * README's "Connect real Collectors" shows the supervisor config the real-agent test uses
 * (test/interop/supervisor.ts): the block must be exactly that config, so what the README
 * tells users is what `npm test` ran. Runs without Go.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { supervisorConfig } from "./supervisor.js";

const README = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "README.md");

test("README's supervisor config is the one the interop test runs", () => {
  const readme = readFileSync(README, "utf8");
  const section = readme.split("## Connect real Collectors")[1]?.split("\n## ")[0] ?? "";
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "a yaml block in the section");
  const expected = supervisorConfig(
    {
      supervisor: "",
      otelcol: "/usr/local/bin/otelcol",
      endpoint: "ws://opamp-gitops.internal:4320/v1/opamp",
      dir: "/var/lib/otelcol/supervisor",
      attributes: { "host.role": "edge" },
    },
    { OTLP_GRPC_PORT: "4317", HEALTH_PORT: "13133" },
  );
  assert.equal(block, expected);
});
