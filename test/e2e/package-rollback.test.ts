/**
 * A rollback re-offers the stable bundle's packages to an agent that already installed the
 * new ones: a 2-stage rollout of plugin 2.0.0 (over 1.0.0) where the first-stage agent
 * installs it and the second-stage agent fails the install; after the rollback the first
 * agent is offered 1.0.0 again (PackagesAvailable with the stable bundle's packages and an
 * all_packages_hash other than 2.0.0's) and reinstalls it. The agents are scripted here
 * (WebSocket, reporting what they are offered).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import type { Service } from "../../src/service/service.js";
import { type Received, TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { groupsRepo } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const V1 = Buffer.from("plugin v1\n");
const V2 = Buffer.from("plugin v2\n");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsRemoteConfig |
  Caps.AcceptsPackages |
  Caps.ReportsPackageStatuses;

const groupYaml = (version: string, body: Buffer) => `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 50, pause: 0s}, {percent: 100}]
  applyTimeout: 60s
  maxFailures: 0
  onFailure: rollback
heartbeatInterval: 1h
packages:
  plugin: {version: "${version}", sha256: ${sha(body)}}
`;

type Offer = {
  packages: Record<string, { version: string }>;
  allPackagesHash: Uint8Array;
};
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("hex");

/**
 * An agent that applies every config and installs every package offer (or fails `failing`
 * versions), reporting both after each message from the server.
 */
class ScriptedAgent {
  readonly agent: TestAgent;
  readonly offers: Offer[] = [];
  readonly installed: string[] = [];
  #handled = 0;
  #config = Buffer.alloc(0);
  #packages: Record<string, unknown> = {};
  #packagesHash = Buffer.alloc(0);
  #timer: NodeJS.Timeout | undefined;

  constructor(
    url: string,
    readonly failing: () => string | undefined,
  ) {
    this.agent = new TestAgent({ transport: "websocket", url });
  }

  async start(): Promise<void> {
    await this.agent.connect();
    await this.agent.send(this.#report());
    this.#timer = setInterval(() => void this.#step().catch(() => {}), 20);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.agent.close();
  }

  #report() {
    return {
      capabilities: CAPS,
      agentDescription: {
        identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
        nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: "edge" } }],
      },
      remoteConfigStatus: { lastRemoteConfigHash: this.#config, status: 1 },
      packageStatuses: {
        packages: this.#packages,
        serverProvidedAllPackagesHash: this.#packagesHash,
      },
    };
  }

  async #step(): Promise<void> {
    let changed = false;
    while (this.#handled < this.agent.received.length) {
      const m = this.agent.received[this.#handled++] as Received;
      const rc = m.remoteConfig as { configHash: Uint8Array } | null;
      if (rc?.configHash) {
        this.#config = Buffer.from(rc.configHash);
        changed = true;
      }
      const pa = m.packagesAvailable as Offer | null;
      if (pa?.allPackagesHash) {
        this.offers.push(pa);
        const version = pa.packages.plugin?.version ?? "";
        const fail = version === this.failing();
        if (!fail) this.installed.push(version);
        this.#packages = {
          plugin: {
            name: "plugin",
            agentHasVersion: fail ? (this.installed.at(-1) ?? "") : version,
            serverOfferedVersion: version,
            status: fail ? 3 : 0,
            errorMessage: fail ? "scripted install failure" : "",
          },
        };
        this.#packagesHash = Buffer.from(pa.allPackagesHash);
        changed = true;
      }
    }
    if (changed) await this.agent.send(this.#report());
  }
}

describe("rollback of a package upgrade", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let url = "";
  const agents: ScriptedAgent[] = [];
  const log = capturedLogger("info");

  before(async () => {
    repo = groupsRepo({ edge: groupYaml("1.0.0", V1) }, "edge with plugin 1.0.0");
    svc = await startTestService(
      { repo: repo.dir },
      {
        logger: log.logger,
        advertise: true,
        packages: { "plugin-v1.bin": V1, "plugin-v2.bin": V2 },
      },
    );
    service = svc.service;
    url = svc.url;
  });

  after(async () => {
    for (const a of agents) a.stop();
    await svc?.close();
  });

  test("the first-stage agent that installed 2.0.0 is offered 1.0.0 again and reinstalls it", async () => {
    // The first agent offered 2.0.0 installs it; the next one fails it.
    let firstOfV2: ScriptedAgent | undefined;
    const failing = (self: () => ScriptedAgent) => () => {
      const me = self();
      if (!firstOfV2 && me.offers.some((o) => o.packages.plugin?.version === "2.0.0"))
        firstOfV2 = me;
      return firstOfV2 === me ? undefined : "2.0.0";
    };
    for (let i = 0; i < 2; i++) {
      const a: ScriptedAgent = new ScriptedAgent(
        url,
        failing(() => a),
      );
      agents.push(a);
      await a.start();
    }
    const [one, two] = agents as [ScriptedAgent, ScriptedAgent];
    await waitFor(
      "both agents install 1.0.0",
      () => one.installed.includes("1.0.0") && two.installed.includes("1.0.0"),
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await waitFor(
      "rollout of 1.0.0 completed",
      () =>
        service.rollouts.status("edge")?.rollout?.status === "completed" ||
        service.rollouts.status("edge")?.rollout === undefined
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    repo.write("groups/edge/group.yaml", groupYaml("2.0.0", V2)).commit("edge: plugin 2.0.0");
    await waitFor(
      "rolled back",
      () => service.rollouts.status("edge")?.rollout?.status === "rolled-back",
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    const first = firstOfV2 as ScriptedAgent | undefined;
    assert.ok(first, "one agent installed 2.0.0");
    assert.ok(first.installed.includes("2.0.0"));
    const v2 = first.offers.find((o) => o.packages.plugin?.version === "2.0.0") as Offer;
    await waitFor(
      "the first agent reinstalls 1.0.0",
      () => first.installed.at(-1) === "1.0.0" && first.installed.length >= 3,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    assert.deepEqual(first.installed, ["1.0.0", "2.0.0", "1.0.0"]);
    // The second-stage agent failed 2.0.0 (so it was offered 2.0.0 after the first stage).
    const second = first === one ? two : one;
    assert.ok(second.offers.some((o) => o.packages.plugin?.version === "2.0.0"));
    assert.ok(!second.installed.includes("2.0.0"), "the second agent failed it");
    const again = first.offers.at(-1) as Offer;
    assert.equal(again.packages.plugin?.version, "1.0.0");
    assert.notEqual(hex(again.allPackagesHash), hex(v2.allPackagesHash));
    assert.equal(hex(again.allPackagesHash), hex(first.offers[0]?.allPackagesHash));
  });
});
