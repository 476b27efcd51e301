/**
 * The Operator OpAMP Bridge gets what it accepts. No Kubernetes runs here: the Go interop
 * program (opamp-go client) plays the bridge with -bridge, checking every entry exactly as the
 * bridge's source does (test/interop/go/bridge.go), against a real server with real Redis.
 * The config served is what validation makes of an otelcol-bridge group; keyed by file name
 * (as it was before) the same resources are refused. Skipped when no Go toolchain is installed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import type { DesiredConfig } from "../../src/opamp/desired.js";
import { collectorResource } from "../helpers/bridge-resource.js";
import { buildGoProgram, findGo, type GoRun, runGoProgram } from "../helpers/go-program.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { GROUP_YAML, validateFiles } from "../validate/helpers.js";

const GROUP = `${GROUP_YAML}config:\n  schema: otelcol-bridge\n`;

/** The config validation serves for an otelcol-bridge group of these files. */
async function bridgeGroup(files: Record<string, string>): Promise<DesiredConfig> {
  const entries = Object.fromEntries(
    Object.entries(files).map(([name, text]) => [`groups/k8s/${name}`, text]),
  );
  const report = await validateFiles({ "groups/k8s/group.yaml": GROUP, ...entries });
  const spec = report.fleet?.groups.get("k8s");
  assert.ok(spec, JSON.stringify(report.findings));
  return { hash: spec.configHash, files: spec.files };
}

const uidOf = (run: GoRun) => String(run.events.find((e) => e.event === "start")?.instanceUid);
const show = (run: GoRun) =>
  `exit ${run.code}\n${run.events.map((e) => JSON.stringify(e)).join("\n")}\n${run.stderr}`;

test("the OpAMP Bridge accepts what an otelcol-bridge group serves", {
  timeout: 420_000,
}, async (t) => {
  const found = findGo();
  if (!("go" in found)) {
    t.skip(`go not found: ${found.reason}`);
    return;
  }
  const workDir = mkdtempSync(join(tmpdir(), "opamp-interop-bridge-"));
  t.after(() => rmSync(workDir, { recursive: true, force: true }));
  const bin = join(workDir, "interop");
  await buildGoProgram(found.go, bin);

  const gateway = collectorResource("gateway", "observability");
  const agent = collectorResource(
    "agent",
    "monitoring",
    "opentelemetry.io/opamp-managed: opamp-bridge",
  );
  const srv: TestServer = await startTestServer();
  t.after(() => srv.close());
  const bridge = (transport: "ws" | "http") =>
    runGoProgram(
      bin,
      [
        "-url",
        srv.url,
        "-transport",
        transport,
        "-bridge",
        "opamp-bridge",
        "-heartbeat",
        "1s",
        "-timeout",
        "30s",
      ],
      60_000,
    );

  for (const transport of ["ws", "http"] as const) {
    await t.test(`${transport}: served keys <namespace>/<name> are APPLIED`, async () => {
      const config = await bridgeGroup({ "gateway.yaml": gateway, "agent.yaml": agent });
      srv.desired.all = { config };
      const run = await bridge(transport);
      assert.equal(run.code, 0, show(run));
      const received = run.events.find((e) => e.event === "remote_config");
      assert.deepEqual(received?.files, {
        "monitoring/agent": agent,
        "observability/gateway": gateway,
      });
      assert.deepEqual(
        run.events.filter((e) => e.event === "applied").map((e) => e.hash),
        [config.hash],
      );
      const state = await srv.server.store.load(uidOf(run));
      assert.equal(state?.reportedHash, config.hash);
      assert.equal(state?.remoteConfigStatus?.status, RemoteConfigStatus.APPLIED);
      // What the bridge reports it runs: the same keys, content type "yaml", whole resources.
      const effective = state?.effectiveConfig?.configMap?.configMap ?? {};
      assert.deepEqual(Object.keys(effective).sort(), [
        "monitoring/agent",
        "observability/gateway",
      ]);
      assert.equal(effective["observability/gateway"]?.contentType, "yaml");
      assert.equal(Buffer.from(effective["observability/gateway"]?.body ?? []).toString(), gateway);
    });
  }

  await t.test("keyed by file name, or unlabelled, the bridge refuses it (FAILED)", async () => {
    srv.desired.all = { config: yamlConfig({ "gateway.yaml": gateway }) };
    const byName = await bridge("ws");
    assert.equal(byName.code, 0, show(byName));
    assert.deepEqual(
      byName.events.filter((e) => e.event === "failed").map((e) => e.error),
      ["invalid key"],
    );
    const stored = await srv.server.store.load(uidOf(byName));
    assert.equal(stored?.remoteConfigStatus?.status, RemoteConfigStatus.FAILED);
    assert.equal(stored?.remoteConfigStatus?.errorMessage, "invalid key");

    // Validation refuses this resource (BRIDGE_NOT_MANAGED); served anyway, so does the bridge.
    const unlabelled = collectorResource("gateway", "observability", "");
    srv.desired.all = { config: yamlConfig({ "observability/gateway": unlabelled }) };
    const refused = await bridge("http");
    assert.match(
      String(refused.events.find((e) => e.event === "failed")?.error),
      /cannot modify a collector that doesn't have `opentelemetry\.io\/opamp-managed: true \| <bridge-name>` set/,
      show(refused),
    );
  });
});
