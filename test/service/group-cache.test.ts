/**
 * The group each agent selects is kept per agent (fleet-provider.ts) instead of matching the
 * selectors on every message. What must move it: a new description (the agent now selects
 * another group) and a new commit (the selectors changed). Each step checks what the agent is
 * served, the group it is placed in and the rollout it is a member of.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { Service } from "../../src/service/service.js";
import { helloAs, type Received, TestAgent } from "../helpers/agent.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { groupsRepo, roleGroupYaml } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;

const hello = (role: string) => helloAs(role, CAPS);

/** The `fleet.group` label of the config offered in a reply (collectorYaml's label). */
function offeredLabel(reply: Received): string | undefined {
  const remote = reply.remoteConfig as
    | { config?: { configMap?: Record<string, { body?: Uint8Array }> } }
    | null
    | undefined;
  for (const file of Object.values(remote?.config?.configMap ?? {})) {
    const m = /value: (\S+)/.exec(Buffer.from(file.body ?? []).toString());
    if (m) return m[1];
  }
  return undefined;
}

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  waitFor(what, probe, { timeoutMs: 60_000, intervalMs: 50 });

describe("the group kept per agent", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let url = "";
  const agents: TestAgent[] = [];

  before(async () => {
    repo = groupsRepo(
      { edge: roleGroupYaml("edge"), gateway: roleGroupYaml("gateway") },
      "edge and gateway",
    );
    svc = await startTestService({ repo: repo.dir, pollInterval: "100ms" });
    service = svc.service;
    url = svc.url;
  });

  after(async () => {
    for (const a of agents) a.close();
    await svc?.close();
  });

  /** Where the service has the agent: placed group, provider's answer, rollout membership. */
  const where = (uid: string) => {
    const live = service.opamp.handler.live.get(uid);
    return {
      placed: service.bridge?.groupOf.get(uid),
      provider: live ? service.provider?.groupOf(live.state) : undefined,
      edgeMember: service.rollouts.members("edge").includes(uid),
      gatewayMember: service.rollouts.members("gateway").includes(uid),
    };
  };

  test("a new description moves the agent; so does a commit that changes the selectors", async () => {
    const agent = new TestAgent({ transport: "http", url });
    await agent.connect();
    agents.push(agent);
    const uid = uidToString(agent.uid);

    assert.equal(offeredLabel(await agent.send(hello("edge"))), "edge-v1");
    await until("member of edge", () => where(uid).edgeMember || undefined);
    assert.deepEqual(where(uid), {
      placed: "edge",
      provider: "edge",
      edgeMember: true,
      gatewayMember: false,
    });
    // Heartbeats do not move it.
    await agent.send({ capabilities: CAPS });
    assert.equal(where(uid).provider, "edge");

    // The same agent now describes itself as a gateway.
    assert.equal(offeredLabel(await agent.send(hello("gateway"))), "gateway-v1");
    await until("member of gateway", () => where(uid).gatewayMember || undefined);
    assert.deepEqual(where(uid), {
      placed: "gateway",
      provider: "gateway",
      edgeMember: false,
      gatewayMember: true,
    });

    // The selectors swap in Git: its description is unchanged, its group is not.
    repo.writeAll({
      "groups/edge/group.yaml": roleGroupYaml("gateway"),
      "groups/gateway/group.yaml": roleGroupYaml("edge"),
    });
    const swapped = repo.commit("swap the selectors");
    await until("the swap served", () => service.sync?.current?.commit === swapped || undefined);
    const reply = await until("edge's config offered", async () => {
      const r = await agent.send({ capabilities: CAPS });
      return offeredLabel(r) === "edge-v1" ? r : undefined;
    });
    assert.ok(reply);
    await until("member of edge again", () => where(uid).edgeMember || undefined);
    assert.deepEqual(where(uid), {
      placed: "edge",
      provider: "edge",
      edgeMember: true,
      gatewayMember: false,
    });
  });
});
