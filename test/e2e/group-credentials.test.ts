/**
 * Per-group credentials through the whole service, over both transports: a token scoped to
 * `groups=edge` is served edge, while an agent with it that claims the gateway group is served
 * nothing, is listed as unauthorized by the admin API and on the status branch, and never
 * becomes a member of the gateway rollout. An unscoped token may be served any group.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { Service } from "../../src/service/service.js";
import { helloAs, postOpamp, TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { git, readStatusTree } from "../status/helpers.js";
import { collectorYaml, groupsRepo, roleGroupYaml } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;

const hello = (role: string) => helloAs(role, CAPS);

/** Waits for `probe` to return a value: up to 60 s, checked every 100 ms. */
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  waitFor(what, probe, { timeoutMs: 60_000, intervalMs: 100 });

describe("per-group credentials", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let url = "";
  let api = "";
  const agents: TestAgent[] = [];
  const log = capturedLogger("info");

  before(async () => {
    repo = groupsRepo(
      { edge: roleGroupYaml("edge"), gateway: roleGroupYaml("gateway") },
      "edge and gateway",
    );
    svc = await startTestService(
      { repo: repo.dir },
      {
        logger: log.logger,
        agentTokens: "# scoped\nedge-token groups=edge\nany-token\n",
      },
    );
    service = svc.service;
    url = svc.url;
    api = svc.api;
  });

  after(async () => {
    for (const a of agents) a.close();
    await svc?.close();
  });

  const agent = async (transport: "websocket" | "http", token: string) => {
    const a = new TestAgent({ transport, url, token });
    await a.connect();
    agents.push(a);
    return a;
  };

  test("a scoped token is served its group, and nothing for another group, on both transports", async () => {
    const edgeWs = await agent("websocket", "edge-token");
    const edgeHttp = await agent("http", "edge-token");
    const deniedWs = await agent("websocket", "edge-token");
    const deniedHttp = await agent("http", "edge-token");
    const anyGateway = await agent("websocket", "any-token");
    assert.ok((await edgeWs.send(hello("edge"))).remoteConfig, "edge over WebSocket");
    assert.ok((await edgeHttp.send(hello("edge"))).remoteConfig, "edge over HTTP");
    assert.ok((await anyGateway.send(hello("gateway"))).remoteConfig, "unscoped token");
    for (const denied of [deniedWs, deniedHttp]) {
      const reply = await denied.send(hello("gateway"));
      assert.equal(reply.remoteConfig, null, "no config for a group the token does not allow");
      assert.equal(reply.errorResponse, null);
      // Heartbeats stay unserved too.
      assert.equal((await denied.send({ capabilities: CAPS })).remoteConfig, null);
    }
    // A token the file does not hold is refused before any state is made.
    assert.equal((await postOpamp(url, new Uint8Array(0), { token: "edge" })).status, 401);

    // The admin API lists the two as unauthorized, with no group.
    type View = {
      instanceUid: string;
      group: string | null;
      unauthorized: { group: string } | null;
    };
    const list = (await (await fetch(`${api}/api/v1/agents?state=unauthorized`)).json()) as View[];
    const uid = (a: TestAgent) => uidToString(a.uid);
    const deniedUids = [uid(deniedWs), uid(deniedHttp)].sort();
    assert.deepEqual(
      list.map((v) => v.instanceUid),
      deniedUids,
    );
    for (const v of list) {
      assert.equal(v.group, null);
      assert.deepEqual(v.unauthorized, { group: "gateway" });
    }
    const one = (await (await fetch(`${api}/api/v1/agents/${deniedUids[0]}`)).json()) as View;
    assert.deepEqual(one.unauthorized, { group: "gateway" });
    const edgeView = (await (await fetch(`${api}/api/v1/agents/${uid(edgeWs)}`)).json()) as View;
    assert.equal(edgeView.group, "edge");
    assert.equal(edgeView.unauthorized, null);

    // The status branch: the agents' files say so, and the fleet counts them.
    const gitdir = join(repo.dir, ".git");
    const tree = await until("status branch with unauthorized agents", () => {
      const head = git(gitdir, "for-each-ref", "--format=%(objectname)", "refs/heads/opamp-status");
      if (!head.trim()) return undefined;
      const t = readStatusTree(gitdir, "opamp-status");
      const fleet = t.get("status/fleet.yaml") as
        | { agents?: { unauthorized?: number } }
        | undefined;
      return fleet?.agents?.unauthorized === 2 ? t : undefined;
    });
    for (const u of deniedUids) {
      const file = tree.get(`status/agents/_unassigned/${u}.yaml`);
      assert.ok(file, `status file of ${u}`);
      assert.equal(file.group, null);
      assert.deepEqual(file.unauthorized, { group: "gateway" });
    }
    const edgeFile = tree.get(`status/agents/edge/${uid(edgeWs)}.yaml`);
    assert.ok(edgeFile && !("unauthorized" in edgeFile));

    // A new gateway commit rolls out to the allowed agent only: the denied ones never joined.
    repo.write("groups/gateway/collector.yaml", collectorYaml("gateway-v2")).commit("gateway v2");
    const v2 = configHash([
      {
        name: "collector.yaml",
        contentType: "text/yaml",
        body: Buffer.from(collectorYaml("gateway-v2")),
      },
    ]);
    const rollout = await until("gateway rollout", () => {
      const r = service.rollouts.status("gateway")?.rollout;
      return r?.target.hash === v2 ? r : undefined;
    });
    assert.equal(rollout.members, 1, "only the agent whose token allows gateway is a member");
    for (const denied of [deniedWs, deniedHttp])
      assert.equal((await denied.send({ capabilities: CAPS })).remoteConfig, null);
  });
});
