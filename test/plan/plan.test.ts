/**
 * `opamp-gitops plan` offline: real repositories with two commits for each kind of change,
 * agents read from a status branch written by the status writer's own code. The JSON plan is
 * checked field by field; the Markdown and GitHub outputs for what they say.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { run } from "../helpers/cli.js";
import { writeStatusBranch } from "../helpers/status-branch.js";
import { uidOf } from "../status/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { tempDir } from "../sync/helpers/git-repo.js";
import { baseRepo, CANARY, EDGE, fleetAgents, GATEWAY, group, plan } from "./helpers.js";

const SECRET_LINE = "    headers:\n      api-key: s3cr3t-value-123";
const withSecret = (label: string) =>
  collectorYaml(label).replace(
    "endpoint: https://otlp.example.com",
    `endpoint: https://otlp.example.com\n${SECRET_LINE}`,
  );

describe("plan, offline against the status branch", () => {
  test("a config edit: hashes, the diff, the rollout at today's agent count, the secret it adds", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.write("groups/edge/collector.yaml", withSecret("edge-v2"));
    const head = r.commit("edge v2");
    // Uncommitted work is never read: plan reads Git objects only.
    r.write("groups/edge/collector.yaml", "not: [valid");

    const { code, plan: p, err } = await plan({ repo: r.dir });
    assert.equal(code, 0, err);
    assert.ok(p);
    assert.equal(p.valid, true);
    assert.equal(p.head.commit, head);
    assert.equal(p.agents.kind, "status-branch");
    // Nobody can move: only the changed group's folder of the status branch is counted.
    assert.equal(p.agents.known, 20);
    assert.match(
      p.agents.note ?? "",
      /no agent can change group: counted in the status branch folders/,
    );
    assert.deepEqual(
      p.groups.map((g) => g.name),
      ["edge"],
      "canary is untouched",
    );
    const edge = group(p, "edge");
    assert.equal(edge.change, "changed");
    assert.match(edge.hash.before ?? "", /^[0-9a-f]{64}$/);
    assert.match(edge.hash.after ?? "", /^[0-9a-f]{64}$/);
    assert.notEqual(edge.hash.before, edge.hash.after);
    assert.equal(edge.files.length, 1);
    const file = edge.files[0];
    assert.equal(file?.path, "groups/edge/collector.yaml");
    assert.equal(file?.change, "modified");
    assert.match(
      file?.diff ?? "",
      /^--- a\/groups\/edge\/collector\.yaml\n\+\+\+ b\/groups\/edge\/collector\.yaml\n@@ /,
    );
    assert.match(file?.diff ?? "", /^- {8}value: edge$/m);
    assert.match(file?.diff ?? "", /^\+ {8}value: edge-v2$/m);
    assert.match(file?.diff ?? "", /^\+ {6}api-key: s3cr3t-value-123$/m);
    assert.equal(file?.additions, 3);
    assert.equal(file?.deletions, 1);

    assert.deepEqual(edge.agents, {
      before: 20,
      after: 20,
      joined: { count: 0, by: {}, examples: [] },
      left: { count: 0, by: {}, examples: [] },
    });
    assert.deepEqual(edge.rollout, {
      id: `edge@${head.slice(0, 7)}`,
      stages: [
        { percent: 10, cohort: 2, pauseMs: 120_000 },
        { percent: 50, cohort: 10, pauseMs: 300_000 },
        { percent: 100, cohort: 20, pauseMs: 0 },
      ],
      applyTimeoutMs: 300_000,
      worstCaseMs: 3 * 300_000 + 120_000 + 300_000,
      maxFailures: 2,
      onFailure: "rollback",
      paused: false,
      first: false,
    });
    assert.equal(edge.secrets.length, 1);
    assert.equal(edge.secrets[0]?.file, "groups/edge/collector.yaml");
    assert.match(edge.secrets[0]?.message ?? "", /api-key holds a secret in plain text/);
    assert.ok(edge.findings.some((f) => f.code === "OTELCOL_PLAINTEXT_SECRET"));

    // A secret already in the base is not "added" again.
    r.write("groups/edge/collector.yaml", withSecret("edge-v3"));
    r.commit("edge v3");
    const again = await plan({ repo: r.dir });
    assert.deepEqual(group(again.plan, "edge").secrets, []);
  });

  test("a selector change moves agents to another group and leaves some unassigned", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.write(
      "groups/edge/group.yaml",
      EDGE.replace(
        "match: {host.role: edge}",
        "match: {host.role: edge}\n  expressions: [{key: region, operator: In, values: [us]}]",
      ),
    );
    r.commit("edge: us only");
    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 0);
    assert.ok(p);
    assert.equal(p.agents.note, undefined, "agents read one by one: they can change group");
    const edge = group(p, "edge");
    assert.equal(edge.change, "changed");
    assert.equal(edge.matching.selectorChanged, true);
    assert.equal(edge.hash.before, edge.hash.after);
    assert.equal(edge.rollout, undefined, "same config hash: nothing to roll out");
    assert.equal(edge.agents.before, 20);
    assert.equal(edge.agents.after, 12);
    assert.deepEqual(edge.agents.left.by, { canary: 3, _unassigned: 5 });
    assert.deepEqual(edge.agents.left.examples, [1, 2, 3, 4, 5].map(uidOf));
    const canary = group(p, "canary");
    assert.equal(canary.change, "agents");
    assert.equal(canary.files.length, 0);
    assert.deepEqual(canary.agents.joined, {
      count: 3,
      by: { edge: 3 },
      examples: [1, 2, 3].map(uidOf),
    });
    assert.equal(p.newlyUnassigned.count, 5);
    assert.deepEqual(p.newlyUnassigned.by, { edge: 5 });
  });

  test("status files that are not agent files are skipped and counted, never trusted", async () => {
    const r = baseRepo();
    const bad = uidOf(900);
    writeStatusBranch(r.dir, fleetAgents(), {
      fleetFile: false,
      extraFiles: {
        [`status/agents/edge/${bad}.yaml`]: "instanceUid: [not, a, string\n",
        [`status/agents/edge/${uidOf(901)}.yaml`]: Buffer.alloc(300 * 1024, 0x61),
        // A file whose uid does not match its name is not that agent.
        [`status/agents/edge/${uidOf(902)}.yaml`]: `instanceUid: ${uidOf(1)}\ndescription: {}\n`,
        "status/agents/edge/notes.yaml": "ignored: true\n",
      },
    });
    r.write("groups/canary/group.yaml", CANARY(5)).commit("canary wins");
    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 0);
    assert.equal(p?.agents.known, 27);
    assert.equal(p?.agents.skipped, 3);
    assert.equal(group(p, "canary").agents.after, 3);
  });

  test("a priority change moves the agents two groups both match", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.write("groups/canary/group.yaml", CANARY(5));
    r.commit("canary wins");
    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 0);
    const canary = group(p, "canary");
    assert.equal(canary.change, "changed");
    assert.deepEqual(canary.matching.priority, { before: -1, after: 5 });
    assert.equal(canary.matching.selectorChanged, false);
    assert.equal(canary.agents.before, 0);
    assert.equal(canary.agents.after, 3);
    assert.deepEqual(canary.agents.joined.by, { edge: 3 });
    const edge = group(p, "edge");
    assert.equal(edge.change, "agents");
    assert.deepEqual(edge.agents.left, {
      count: 3,
      by: { canary: 3 },
      examples: [1, 2, 3].map(uidOf),
    });
    assert.equal(p?.newlyUnassigned.count, 0);
  });

  test("a group added and a group removed: its first rollout, and the agents left behind", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.writeAll({
      "groups/gateway/group.yaml": GATEWAY,
      "groups/gateway/collector.yaml": collectorYaml("gateway"),
    });
    r.remove("groups/edge");
    const head = r.commit("gateway in, edge out");
    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 0);
    assert.ok(p);
    assert.deepEqual(
      p.groups.map((g) => [g.name, g.change]),
      [
        ["canary", "agents"],
        ["edge", "removed"],
        ["gateway", "added"],
      ],
    );
    const gateway = group(p, "gateway");
    assert.equal(gateway.hash.before, null);
    assert.match(gateway.hash.after ?? "", /^[0-9a-f]{64}$/);
    assert.deepEqual(gateway.agents.joined.by, { _unassigned: 5 });
    assert.deepEqual(gateway.rollout?.stages, [
      { percent: 50, cohort: 3, pauseMs: 60_000 },
      { percent: 100, cohort: 5, pauseMs: 0 },
    ]);
    assert.equal(gateway.rollout?.id, `gateway@${head.slice(0, 7)}`);
    assert.equal(gateway.rollout?.first, true);
    assert.equal(gateway.rollout?.worstCaseMs, 2 * 120_000 + 60_000);
    assert.deepEqual(
      gateway.files.map((f) => [f.path, f.change]),
      [
        ["groups/gateway/collector.yaml", "added"],
        ["groups/gateway/group.yaml", "added"],
      ],
    );
    assert.match(
      gateway.files[1]?.diff ?? "",
      /^--- \/dev\/null\n\+\+\+ b\/groups\/gateway\/group\.yaml/,
    );

    const edge = group(p, "edge");
    assert.equal(edge.hash.after, null);
    assert.equal(edge.rollout, undefined);
    assert.deepEqual(edge.agents.left.by, { canary: 3, _unassigned: 17 });
    assert.ok(edge.files.every((f) => f.change === "removed"));
    assert.equal(p.newlyUnassigned.count, 17);
  });

  test("an invalid head: exit 1, the finding on its file and line, no rollout", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.write(
      "groups/edge/collector.yaml",
      collectorYaml("edge").replace(
        "exporters: [otlphttp, debug]",
        "exporters: [otlphttp, otlp/tempo]",
      ),
    );
    r.commit("an exporter defined nowhere");
    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 1);
    assert.ok(p);
    assert.equal(p.valid, false);
    const edge = group(p, "edge");
    const f = edge.findings.find((x) => x.code === "OTELCOL_UNDEFINED_COMPONENT");
    assert.equal(f?.severity, "error");
    assert.equal(f?.file, "groups/edge/collector.yaml");
    assert.ok((f?.line ?? 0) > 1);
    assert.equal(edge.hash.after, null);
    assert.equal(edge.rollout, undefined);

    const text = await plan({ repo: r.dir, format: "text" });
    assert.equal(text.code, 1);
    assert.match(text.out, /INVALID \(1 error/);
    assert.match(text.out, /no rollout: the head is invalid/);
  });
});

describe("plan output for a pull request", () => {
  test("markdown: a verdict, a summary table, details collapsed with stages, secrets and the diff", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    r.write("groups/edge/collector.yaml", withSecret("edge-v2"));
    r.write("groups/canary/group.yaml", CANARY(5));
    r.commit("edge v2, canary wins");
    const { code, out } = await plan({ repo: r.dir, format: "markdown" });
    assert.equal(code, 0);
    const lines = out.split("\n");
    assert.match(lines[0] ?? "", /^### opamp-gitops plan: ✅ valid/);
    assert.match(out, /27 agents known from status branch opamp-status \(/);
    // The table comes before any details.
    const header = lines.indexOf("| Group | Change | Config hash | Agents | Rollout | Findings |");
    assert.ok(header > 0, out);
    assert.ok(header < lines.findIndex((l) => l.startsWith("<details>")));
    const row = (name: string) =>
      (lines.find((l) => l.startsWith(`| ${name} |`)) ?? "").split(" | ");
    const edgeRow = row("edge");
    assert.equal(edgeRow[1], "changed");
    assert.match(edgeRow[2] ?? "", /<code>[0-9a-f]{7}<\/code> → <code>[0-9a-f]{7}<\/code>/);
    assert.equal(edgeRow[3], "20 → 17 (−3)");
    assert.equal(edgeRow[4], "10% → 50% → 100%, ≤ 22m");
    assert.match(edgeRow[5] ?? "", /🔑 1 secret in plain text/);
    const canaryRow = row("canary");
    assert.equal(canaryRow[3], "0 → 3 (+3)");
    assert.equal(canaryRow[4], "—");

    const details = out.slice(out.indexOf("<details><summary><b>edge</b>"));
    assert.ok(details.length > 0);
    assert.match(details, /\| 1 \| 10% \| 2 \| 2m \|/);
    assert.match(details, /\| 3 \| 100% \| 17 \| — \|/);
    assert.match(details, /left 3: 3 to canary/);
    assert.match(details, /api-key holds a secret in plain text/);
    assert.match(details, /```diff\n--- a\/groups\/edge\/collector\.yaml/);
    assert.match(details, /<\/details>/);
    assert.match(out, /<b>canary<\/b>: changed/);
    assert.match(out, /priority -1 → 5/);
  });

  test("markdown of an invalid head says why, with the finding", async () => {
    const r = baseRepo();
    r.write(
      "groups/edge/collector.yaml",
      collectorYaml("edge").replace(
        "exporters: [otlphttp, debug]",
        "exporters: [otlphttp, otlp/tempo]",
      ),
    );
    r.commit("bad");
    const { code, out } = await plan({ repo: r.dir, format: "markdown" });
    assert.equal(code, 1);
    assert.match(out.split("\n")[0] ?? "", /^### opamp-gitops plan: ❌ INVALID \(1 error/);
    assert.match(out, /no status branch "opamp-status"/);
    assert.match(
      out,
      /❌ <code>groups\/edge\/collector\.yaml:\d+:\d+<\/code> <code>OTELCOL_UNDEFINED_COMPONENT<\/code> pipeline metrics uses exporter "otlp\/tempo", which is not defined/,
    );
  });

  test("github: annotations on the pull request's lines and the plan in the job summary", async () => {
    const r = baseRepo();
    r.write(
      "groups/edge/collector.yaml",
      collectorYaml("edge").replace(
        "exporters: [otlphttp, debug]",
        "exporters: [otlphttp, otlp/tempo]",
      ),
    );
    r.commit("bad");
    const summary = join(tempDir("opamp-gitops-plan-"), "summary.md");
    writeFileSync(summary, "earlier step\n");
    const { code, out } = await plan(
      { repo: r.dir, format: "github" },
      { GITHUB_STEP_SUMMARY: summary },
    );
    assert.equal(code, 1);
    assert.match(
      out,
      /^::error file=groups\/edge\/collector\.yaml,line=\d+,col=\d+,title=OTELCOL_UNDEFINED_COMPONENT::pipeline metrics uses exporter "otlp\/tempo"/m,
    );
    assert.match(out, /^opamp-gitops plan: INVALID/m);
    const written = readFileSync(summary, "utf8");
    assert.match(written, /^earlier step\n### opamp-gitops plan: ❌/);
    assert.match(written, /\| edge \| changed \|/);
  });
});

describe("plan usage errors", () => {
  test("an unknown ref, a folder that is no repository: exit 2 with what to do", async () => {
    const r = baseRepo();
    const bad = await plan({ repo: r.dir, base: "no-such-branch" });
    assert.equal(bad.code, 2);
    assert.match(bad.err, /revision "no-such-branch" names no branch, tag or commit/);
    assert.match(bad.err, /git fetch origin/);
    const past = await plan({ repo: r.dir, base: "HEAD~5" });
    assert.equal(past.code, 2);
    assert.match(past.err, /goes past the first commit/);
    const notRepo = await plan({ repo: tempDir("opamp-gitops-plan-") });
    assert.equal(notRepo.code, 2);
    assert.match(notRepo.err, /is not a Git repository \(--repo\)/);
    const format = await plan({ repo: r.dir, format: "yaml" as "json" });
    assert.equal(format.code, 2);
    assert.match(format.err, /--format must be one of text, json, markdown, github/);
  });

  test("--api-url that nothing answers: exit 3", async () => {
    const r = baseRepo();
    r.write("groups/edge/collector.yaml", collectorYaml("v2")).commit("v2");
    const run = await plan({ repo: r.dir, apiUrl: "http://127.0.0.1:9" });
    assert.equal(run.code, 3);
    assert.match(run.err, /cannot reach the service at http:\/\/127\.0\.0\.1:9/);
  });
});

describe("plan as a user runs it", () => {
  test("the real command: text on stdout, exit 0; a missing --base is a usage error (exit 2)", async () => {
    const r = baseRepo();
    r.write("groups/edge/collector.yaml", collectorYaml("v2")).commit("v2");
    const ok = await run(["plan", "--repo", r.dir, "--base", "HEAD~1", "--head", "HEAD"]).exited;
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^plan HEAD~1 \([0-9a-f]{7}\) → HEAD \([0-9a-f]{7}\): valid/);
    assert.match(ok.stdout, /^group edge: changed$/m);
    assert.match(ok.stdout, /rollout edge@[0-9a-f]{7}: 10% = 0 agents/);
    const missing = await run(["plan", "--repo", r.dir, "--head", "HEAD"]).exited;
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--base <ref>' not specified/);
  });
});
