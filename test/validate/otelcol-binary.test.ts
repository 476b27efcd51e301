/**
 * The Collector's own check (`--otelcol`), with the real Collector the interop test builds
 * (test/helpers/collector-build.ts; skipped without a Go toolchain): what only the component
 * knows is stopped, on the file and line its message names.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runValidate } from "../../src/commands/validate.js";
import { loadSettings } from "../../src/settings.js";
import { FleetSync } from "../../src/sync/index.js";
import { ValidationCache, validateSnapshot } from "../../src/validate/index.js";
import { CollectorChecker, pathOfMessage } from "../../src/validate/otelcol-binary.js";
import { buildCollector, type CollectorBuild } from "../helpers/collector-build.js";
import { plan } from "../plan/helpers.js";
import { TestRepo } from "../sync/helpers/git-repo.js";
import { fixtureRepo } from "./helpers.js";

const GROUP = "selector:\n  match: {host.role: edge}\n";
const CONFIG = (batch: string, debug = "{}") => `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
processors:
  batch:
${batch}
exporters:
  debug: ${debug}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`;
const GOOD = CONFIG("    send_batch_size: 1000\n    send_batch_max_size: 2000");
// Below send_batch_size: the batch processor refuses it at start; no schema knows.
const BAD = CONFIG("    send_batch_size: 8192\n    send_batch_max_size: 1000");

let built: CollectorBuild | undefined;
async function collector(): Promise<string | undefined> {
  built ??= await buildCollector();
  return "skip" in built ? undefined : built.otelcol;
}

async function validate(files: Record<string, string>, otelcol: string[]) {
  const dir = await fixtureRepo(files);
  let out = "";
  const code = await runValidate(dir, { format: "json", strict: false, otelcol }, {
    write: (s: string) => {
      out += s;
      return true;
    },
  } as NodeJS.WritableStream);
  return { code, out, report: code === 2 ? undefined : JSON.parse(out) };
}

describe("the Collector's own check (--otelcol)", () => {
  test("where the binary's messages point", () => {
    assert.deepEqual(
      pathOfMessage(
        "processors::batch: send_batch_max_size must be greater or equal to send_batch_size",
      ),
      { path: ["processors", "batch"], key: true },
    );
    assert.deepEqual(
      pathOfMessage(
        `failed to get config: 'exporters' error reading configuration for "otlp/tempo": decoding failed: 'otlpexporter.Config' has invalid keys: endpointt`,
      ),
      { path: ["exporters", "otlp/tempo", "endpointt"], key: true },
    );
    assert.deepEqual(pathOfMessage("service::pipelines::traces: must have at least one receiver"), {
      path: ["service", "pipelines", "traces"],
      key: true,
    });
    assert.equal(pathOfMessage("something else entirely"), undefined);
  });

  test("a setting only the component refuses: valid without the binary, an error on its line with it", async (t) => {
    const otelcol = await collector();
    if (!otelcol) return t.skip("no Go toolchain to build the Collector");
    const files = { "groups/edge/group.yaml": GROUP, "groups/edge/collector.yaml": BAD };
    const without = await validate(files, []);
    assert.equal(without.code, 0, without.out);

    const withBinary = await validate(files, [otelcol]);
    assert.equal(withBinary.code, 1);
    const f = withBinary.report.findings.find(
      (x: { code: string }) => x.code === "OTELCOL_COLLECTOR_REJECTED",
    );
    assert.equal(f.severity, "error");
    assert.equal(f.file, "groups/edge/collector.yaml");
    assert.equal(f.line, 7, "the line of processors.batch");
    assert.match(
      f.message,
      /^the Collector refuses this configuration: processors::batch: send_batch_max_size must be greater or equal to send_batch_size/,
    );

    const good = await validate({ ...files, "groups/edge/collector.yaml": GOOD }, [otelcol]);
    assert.equal(good.code, 0, good.out);
  });

  test("config.distribution picks a named binary; a name no --otelcol gives is an error", async (t) => {
    const otelcol = await collector();
    if (!otelcol) return t.skip("no Go toolchain to build the Collector");
    const files = {
      "groups/edge/group.yaml": `${GROUP}config:\n  distribution: core\n`,
      "groups/edge/collector.yaml": CONFIG("    timeout: 1s", "{verbosityy: basic}"),
    };
    const named = await validate(files, [`core=${otelcol}`]);
    assert.equal(named.code, 1);
    const f = named.report.findings.find(
      (x: { code: string }) => x.code === "OTELCOL_COLLECTOR_REJECTED",
    );
    assert.match(
      f.message,
      /^the core Collector refuses this configuration: .*has invalid keys: verbosityy/,
    );
    assert.equal(f.line, 10, "the line of the unknown key");

    const unknown = await validate(files, [`contrib=${otelcol}`]);
    assert.equal(unknown.code, 1);
    const u = unknown.report.findings.find(
      (x: { code: string }) => x.code === "OTELCOL_DISTRIBUTION_UNKNOWN",
    );
    assert.equal(u.file, "groups/edge/group.yaml");
    assert.equal(u.line, 4);
    assert.match(
      u.message,
      /config\.distribution is "core", but no Collector of that name is given to this check \(known: contrib\)/,
    );
  });

  test("a value that is no executable, or given twice: usage errors (exit 2)", async () => {
    const files = { "groups/edge/group.yaml": GROUP, "groups/edge/collector.yaml": GOOD };
    const missing = await validate(files, ["/nonexistent/otelcol"]);
    assert.equal(missing.code, 2);
    assert.match(missing.out, /--otelcol \/nonexistent\/otelcol: not an executable file/);
    const twice = await validate(files, ["a=/bin/true", "a=/bin/false"]);
    assert.equal(twice.code, 2);
    assert.match(twice.out, /--otelcol a= is given twice/);
  });

  test("plan --otelcol: a head the Collector refuses is invalid (exit 1)", async (t) => {
    const otelcol = await collector();
    if (!otelcol) return t.skip("no Go toolchain to build the Collector");
    const r = new TestRepo();
    r.writeAll({ "groups/edge/group.yaml": GROUP, "groups/edge/collector.yaml": GOOD }).commit(
      "good",
    );
    r.write("groups/edge/collector.yaml", BAD).commit("bad batch sizes");
    const offline = await plan({ repo: r.dir });
    assert.equal(offline.code, 0);
    const checked = await plan({ repo: r.dir, otelcol: [otelcol] });
    assert.equal(checked.code, 1);
    const edge = checked.plan?.groups.find((g) => g.name === "edge");
    assert.ok(edge?.findings.some((f) => f.code === "OTELCOL_COLLECTOR_REJECTED" && f.line === 7));
    assert.equal(edge?.rollout, undefined);
  });
});

describe("serve --otelcol", () => {
  test("the setting: [name=]path entries, each an executable; a bad one names --otelcol", async (t) => {
    const otelcol = await collector();
    if (!otelcol) return t.skip("no Go toolchain to build the Collector");
    const s = loadSettings({ otelcol: `${otelcol},contrib=${otelcol}` }, {});
    assert.deepEqual(
      [...s.otelcol],
      [
        ["", otelcol],
        ["contrib", otelcol],
      ],
    );
    assert.equal(loadSettings({}, {}).otelcol.size, 0);
    assert.throws(
      () => loadSettings({}, { OPAMP_GITOPS_OTELCOL: "core=/nonexistent/otelcol" }),
      /invalid setting --otelcol: core=\/nonexistent\/otelcol is not an executable file/,
    );
  });

  test("a commit the Collector refuses is stalled before rollout, as serve validates", async (t) => {
    const otelcol = await collector();
    if (!otelcol) return t.skip("no Go toolchain to build the Collector");
    const r = new TestRepo();
    r.writeAll({ "groups/edge/group.yaml": GROUP, "groups/edge/collector.yaml": GOOD }).commit(
      "good",
    );
    const good = r.head();
    // The validator serve builds from its settings (src/service/service.ts).
    const settings = loadSettings({ otelcol: otelcol }, {});
    const checker = new CollectorChecker(settings.otelcol);
    const cache = new ValidationCache();
    const sync = new FleetSync({
      repo: r.dir,
      pollIntervalMs: 0,
      validate: (snapshot) => validateSnapshot(snapshot, { cache, collector: checker }),
    });
    await sync.start();
    assert.equal(sync.current?.commit, good);
    r.write("groups/edge/collector.yaml", BAD).commit("bad batch sizes");
    assert.equal((await sync.trigger()).result, "stalled");
    assert.equal(sync.current?.commit, good, "the last valid commit is still served");
    const f = sync.status.stalled?.findings.find((x) => x.code === "OTELCOL_COLLECTOR_REJECTED");
    assert.equal(f?.file, "groups/edge/collector.yaml");
    assert.equal(f?.line, 7);
    await sync.stop();
  });
});
