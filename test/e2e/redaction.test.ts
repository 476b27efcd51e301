/**
 * Nothing secret reaches Git (issue 13), through the real path: the service (Git repository,
 * validation, rollouts in Redis, the OpAMP server, the status writer as `serve` wires it) and
 * agents over WebSocket that report the redaction corpus (test/redact/corpus/) in every
 * field an agent fills: description attributes, effective config files, remote-config errors,
 * health status and last error, component health. They fail the rollouts offered to them
 * with corpus errors, so agent text is quoted in group files (failures, `paused.by`, the
 * reason of a rollback, history) and commit messages.
 *
 * Then the status branch's whole history (`git log -p --all`, commit messages included), the
 * admin API's answers (agents, one agent, rollouts), the console's pages and every line the service logged (at
 * debug level) are searched for every marker of the corpus: none may appear.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { AgentToServer, KeyValue } from "../../src/opamp/messages.js";
import type { Service } from "../../src/service/service.js";
import { TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { CORPUS_ATTRIBUTES, corpusConfigs, corpusErrors, markersIn } from "../redact/corpus.js";
import { get, readStatusTree } from "../status/helpers.js";
import { collectorYaml, groupsRepo } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const group = (role: string, onFailure: string) => `selector:
  match: {host.role: ${role}}
rollout:
  stages: [{percent: 100}]
  applyTimeout: 60s
  maxFailures: 0
  onFailure: ${onFailure}
`;
const AGENTS = 24;
const CAPS =
  AgentCapabilities.ReportsStatus |
  AgentCapabilities.AcceptsRemoteConfig |
  AgentCapabilities.ReportsEffectiveConfig |
  AgentCapabilities.ReportsHealth |
  AgentCapabilities.ReportsRemoteConfig;

const kv = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });

/** Polls `f` every 100 ms for up to a minute; `debug` says what was seen on a timeout. */
const until = <T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  debug?: () => string,
) => waitFor(what, f, { timeoutMs: 60_000, intervalMs: 100, detail: debug });

describe("redaction: nothing an agent sends reaches Git in the clear", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  const agents: TestAgent[] = [];
  const configs = corpusConfigs();
  const errors = corpusErrors();
  const err = (i: number) => errors[i % errors.length] as string;
  const log = capturedLogger("debug");
  let apiPort = 0;

  before(async () => {
    repo = groupsRepo(
      { edge: group("edge", "pause"), west: group("west", "rollback") },
      "edge and west",
    );
    svc = await startTestService({ repo: repo.dir }, { logger: log.logger });
    assert.equal(svc.settings.statusEffectiveConfig, "redacted", "the default");
    service = svc.service;
    apiPort = svc.apiPort;
    const url = svc.url;
    for (let i = 0; i < AGENTS; i++) {
      const a = new TestAgent({ transport: "websocket", url });
      await a.connect();
      agents.push(a);
    }
  });

  after(async () => {
    for (const a of agents) a.close();
    await svc?.close();
  });

  /** Agent i's full report: three corpus configs, corpus text in every free-text field. */
  function report(i: number): Partial<AgentToServer> {
    const configMap: Record<string, { body: Uint8Array; contentType: string }> = {};
    for (let k = i; k < configs.length; k += AGENTS) {
      const c = configs[k];
      if (c) configMap[c.name] = { body: new Uint8Array(c.body), contentType: c.contentType };
    }
    return {
      capabilities: CAPS,
      agentDescription: {
        identifyingAttributes: [
          kv("service.name", "otelcol-contrib"),
          kv("service.instance.id", `agent-${i}`),
        ],
        nonIdentifyingAttributes: [
          kv("host.role", i % 2 === 0 ? "edge" : "west"),
          ...Object.entries(CORPUS_ATTRIBUTES).map(([k, v]) => kv(k, v)),
          kv("agent.last.error", err(i + 5)),
        ],
      },
      effectiveConfig: { configMap: { configMap } },
      health: {
        healthy: false,
        status: err(i + 1),
        lastError: err(i + 2),
        componentHealthMap: {
          "exporter:otlphttp": { healthy: false, status: err(i + 3), lastError: err(i + 4) },
        },
      },
    };
  }

  /** Waits for agent i's next config offer after `seen` offers; answers FAILED. */
  async function failOffer(i: number, seen: number, error: string): Promise<void> {
    const a = agents[i] as TestAgent;
    const offer = await until(`an offer to agent ${i}`, () => {
      const offers = a.received.filter((m) => m.remoteConfig);
      return offers.length > seen ? offers[seen] : undefined;
    });
    const hash = (offer.remoteConfig as { configHash: Uint8Array }).configHash;
    await a.send({
      capabilities: CAPS,
      remoteConfigStatus: { lastRemoteConfigHash: hash, status: 3, errorMessage: error },
    });
  }

  test("agents report the corpus and fail the rollouts with corpus errors", async () => {
    await Promise.all(agents.map((a, i) => a.send(report(i))));
    // The first commit is every group's stable config (no rollout): each agent is served it.
    await Promise.all(
      agents.map((a, i) =>
        until(`agent ${i} served`, () => a.received.some((m) => m.remoteConfig) || undefined),
      ),
    );
    // A second commit rolls out to every agent, which fails it.
    repo.writeAll({
      "groups/edge/collector.yaml": collectorYaml("edge-v2"),
      "groups/west/collector.yaml": collectorYaml("west-v2"),
    });
    repo.commit("edge and west v2");
    await Promise.all(agents.map((_, i) => failOffer(i, 1, err(i))));
    await until(
      "edge paused",
      () => service.rollouts.status("edge")?.rollout?.hold,
      () =>
        JSON.stringify(service.rollouts.status("edge"), (_, v) =>
          typeof v === "bigint" ? String(v) : v,
        ),
    );
    await until("west rolled back", () =>
      service.rollouts.status("west")?.rollout?.status === "rolled-back" ? true : undefined,
    );
    // A third west rollout, failed too: the second moves to the history with its reason.
    repo.writeAll({ "groups/west/collector.yaml": collectorYaml("west-v3") });
    repo.commit("west v3");
    const west = agents.map((_, i) => i).filter((i) => i % 2 === 1);
    await Promise.all(west.map((i) => failOffer(i, 2, err(i + 7))));
    const gitdir = join(repo.dir, ".git");
    const tree = await until("the status branch shows everything", () => {
      let t: ReturnType<typeof readStatusTree>;
      try {
        t = readStatusTree(gitdir, "opamp-status");
      } catch {
        return undefined;
      }
      const agentFiles = [...t.keys()].filter((p) => p.startsWith("status/agents/"));
      const edge = t.get("status/groups/edge.yaml");
      const westFile = t.get("status/groups/west.yaml");
      const failed = agentFiles.filter((p) => get(t.get(p), "remoteConfig", "status") === "FAILED");
      // The rolled-back v2 rollout, not a rollout that completed before the agents joined.
      const history = (get(westFile, "history") as unknown[] | undefined) ?? [];
      return agentFiles.length === AGENTS &&
        failed.length === AGENTS &&
        get(edge, "rollout", "paused") &&
        history.some((h) => get(h, "state") === "rolled-back")
        ? t
        : undefined;
    });
    // The quoting places were really filled (else the search below proves nothing).
    assert.match(
      String(get(tree.get("status/groups/edge.yaml"), "rollout", "paused", "by")),
      /failed/,
    );
    const westHistory = get(tree.get("status/groups/west.yaml"), "history") as unknown[];
    const reason = get(
      westHistory.find((h) => get(h, "state") === "rolled-back"),
      "reason",
    );
    assert.match(String(reason), /<redacted:[0-9a-f]{6}>/);
  });

  test("the whole history of the status branch holds none of the corpus' secrets", () => {
    const gitdir = join(repo.dir, ".git");
    const history = execFileSync(
      "git",
      ["--git-dir", gitdir, "log", "-p", "--all", "--format=%H%n%B"],
      {
        maxBuffer: 512 * 1024 * 1024,
      },
    ).toString("utf8");
    const all = [
      ...configs.map((c) => c.body.toString("utf8")),
      ...errors,
      ...Object.values(CORPUS_ATTRIBUTES),
    ].flatMap(markersIn);
    assert.ok(all.length >= 150, `${all.length} secrets in the corpus`);
    const leaked = all.filter((m) => history.includes(m));
    assert.deepEqual(leaked, [], `secrets in the status branch's history: ${leaked.join(", ")}`);
    // The report went through: markers, the configs' plain settings and the texts are there.
    assert.match(history, /<redacted:[0-9a-f]{6}>/);
    assert.match(history, /otlp\.example\.com/);
    assert.match(history, /dial tcp 10\.0\.0\.1:443/);
    const messages = execFileSync("git", [
      "--git-dir",
      gitdir,
      "log",
      "--all",
      "--format=%B",
    ]).toString("utf8");
    assert.match(messages, /failed: "/, "commit messages quote agent errors");
  });

  test("the admin API and the service's logs hold none of the corpus' secrets", async () => {
    const all = [
      ...configs.map((c) => c.body.toString("utf8")),
      ...errors,
      ...Object.values(CORPUS_ATTRIBUTES),
    ].flatMap(markersIn);
    const api = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${apiPort}${path}`);
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      return res.text();
    };
    const answers = [
      await api("/api/v1/agents"),
      await api("/api/v1/rollouts"),
      await api("/api/v1/rollouts/edge"),
      await api("/api/v1/rollouts/west"),
    ];
    for (const a of agents) {
      answers.push(await api(`/api/v1/agents/${uidToString(a.uid)}`));
      answers.push(await api(`/agents/${uidToString(a.uid)}`)); // the console's agent page
    }
    answers.push(await api("/"));
    const text = answers.join("\n");
    const leaked = all.filter((m) => text.includes(m));
    assert.deepEqual(leaked, [], `secrets in the admin API's answers: ${leaked.join(", ")}`);
    // The places were filled: errors, health and attributes are shown, secrets as markers.
    assert.match(text, /<redacted:[0-9a-f]{6}>/);
    assert.match(text, /dial tcp 10\.0\.0\.1:443/);
    // A search cannot probe a hidden attribute value: it matches what the API shows.
    const attributeSecrets = Object.values(CORPUS_ATTRIBUTES).flatMap(markersIn);
    assert.ok(attributeSecrets.length > 0);
    for (const m of attributeSecrets) {
      const res = await fetch(
        `http://127.0.0.1:${apiPort}/api/v1/agents?q=${encodeURIComponent(m)}`,
      );
      assert.equal(res.headers.get("x-total-count"), "0", `a search for ${m} found agents`);
    }
    const lines = log.lines.map((l) => JSON.stringify(l)).join("\n");
    const logged = all.filter((m) => lines.includes(m));
    assert.deepEqual(logged, [], `secrets in the service's log: ${logged.join(", ")}`);
  });
});
