/**
 * Own telemetry with the real Collector supervisor (v0.158.0): group.yaml's `telemetry.logs`
 * with a header from the service's environment is offered as own_logs; the supervisor merges
 * it into the Collector's config, and the real Collector sends its own logs (OTLP/HTTP) to the
 * endpoint with that header: a small HTTP server here receives them. The rollout of that
 * bundle completes, and the resolved header never reaches Git (the supervisor writes it into
 * the effective config it reports, which the status writer redacts).
 *
 * Skipped where the Collector cannot be built (no Go).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Service } from "../../src/service/service.js";
import { buildCollector, type CollectorBinaries } from "../helpers/collector-build.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { get, git, readStatusTree } from "../status/helpers.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";
import { Supervisor, supervisorConfig } from "./supervisor.js";

const TOKEN_ENV = "OPAMP_GITOPS_SECRET_TEST_SUPERVISOR_LOGS_TOKEN";
const SECRET = "own-logs-s3cret";

const COLLECTOR = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:\${env:OTLP_GRPC_PORT}
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 127.0.0.1:\${env:HEALTH_PORT}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`;

const build = await buildCollector();
const skip = "skip" in build ? build.skip : false;

async function until<T>(what: string, probe: () => T | undefined, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("own telemetry with the real Collector supervisor", { skip }, () => {
  const bins = build as CollectorBinaries;
  let repo: TestRepo;
  let svc: TestService;
  let service: Service | undefined;
  let sink: Server;
  let agent: Supervisor | undefined;
  const received: Array<{ url: string; headers: IncomingHttpHeaders }> = [];

  before(async () => {
    process.env[TOKEN_ENV] = SECRET;
    sink = createServer((req, res) => {
      received.push({ url: req.url ?? "", headers: req.headers });
      req.resume();
      req.on("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"));
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const sinkPort = (sink.address() as AddressInfo).port;
    repo = new TestRepo();
    repo.writeAll({
      "groups/sup/group.yaml": `selector:
  match: {host.role: own-telemetry}
rollout:
  applyTimeout: 90s
telemetry:
  logs:
    endpoint: http://127.0.0.1:${sinkPort}/v1/logs
    headers: {Authorization: "Bearer \${env:${TOKEN_ENV}}"}
`,
      "groups/sup/collector.yaml": COLLECTOR,
    });
    repo.commit("own logs to the sink");
    svc = await startTestService({ repo: repo.dir });
    service = svc.service;
    agent = await Supervisor.create({
      supervisor: bins.supervisor,
      otelcol: bins.otelcol,
      endpoint: svc.wsUrl,
      dir: tempDir("opamp-gitops-own-agent-"),
      attributes: { "host.role": "own-telemetry" },
    });
    // The project's documented supervisor config, with own logs reported.
    const config = supervisorConfig(agent.o, {
      OTLP_GRPC_PORT: String(agent.ports.grpc),
      HEALTH_PORT: String(agent.ports.health),
    }).replace(
      "reports_own_metrics: false",
      "reports_own_metrics: false\n  reports_own_logs: true",
    );
    writeFileSync(join(agent.o.dir, "supervisor.yaml"), config);
    await agent.start();
  });

  after(async () => {
    await agent?.stop();
    await svc?.close();
    await new Promise((r) => sink?.close(r));
    delete process.env[TOKEN_ENV];
  });

  test("the Collector sends its own logs to the offered endpoint with the resolved header", async () => {
    const hit = await until("own logs at the sink", () =>
      received.find((r) => r.headers.authorization === `Bearer ${SECRET}`),
    );
    assert.match(hit.url, /logs/);
    const group = service?.sync?.current?.groups.get("sup");
    await until("the bundle's rollout completed", () =>
      service?.rollouts.status("sup")?.rollout?.status === "completed" ? true : undefined,
    );
    assert.equal(service?.rollouts.status("sup")?.stable?.hash, group?.bundleId);
    // The agent's effective config (with the header the supervisor wrote into it) reached
    // the status branch: search everything committed.
    const gitdir = join(repo.dir, ".git");
    await until("the agent's effective config on the status branch", () => {
      if (!git(gitdir, "for-each-ref", "refs/heads/opamp-status").trim()) return undefined;
      const tree = readStatusTree(gitdir, "opamp-status");
      return [...tree.entries()].some(
        ([path, f]) => path.startsWith("status/agents/sup/") && get(f, "effectiveConfig") != null,
      )
        ? true
        : undefined;
    });
    const log = git(join(repo.dir, ".git"), "log", "-p", "--all");
    assert.doesNotMatch(log, new RegExp(SECRET));
  });
});
