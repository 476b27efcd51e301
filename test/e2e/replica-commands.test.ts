/**
 * What one replica's admin API asks reaches the agents connected to another replica at once,
 * through Redis pub/sub (two Service instances on one Redis and one repository):
 * - an API revocation made through replica A closes the agent's WebSocket on replica B and
 *   B refuses its minted token, with the credential poll an hour off on both (so only the
 *   published message can explain it);
 * - `restart` asked of replica A, by uid and by group, sends RESTART to agents connected to
 *   B, which answers A with the outcomes; A records who asked;
 * - a restart asked of the replica that is not the status writer, for an agent connected to
 *   it, shows on the agent's status file (`lastCommand:`, who asked) written by the other;
 *   the entry is deleted with the file once the service forgets the agent.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { helloAs, offeredToken, postOpamp, TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor, waitForValue } from "../helpers/wait.js";
import { get, git, readStatusTree } from "../status/helpers.js";
import { groupsRepo } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 100}]
heartbeatInterval: 1h
`;
const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.AcceptsOpAMPConnectionSettings |
  Caps.AcceptsRestartCommand;

const hello = () => helloAs("edge", CAPS);

describe("admin commands reach agents on every replica (Redis pub/sub)", () => {
  let repo: TestRepo;
  let redis: TestRedis;
  const replicas: TestService[] = [];
  const agents: TestAgent[] = [];
  const log = capturedLogger("info");

  /** A replica on the test's Redis prefix and repository (a Service of its own). */
  async function replica(): Promise<TestService> {
    const r = await startTestService(
      { repo: repo.dir, mintAgentTokens: "true" },
      {
        logger: log.logger,
        redis,
        agentTokens: "boot-token groups=edge\n",
        // The credential poll (the fallback) an hour off: only the channel can be in time.
        adjust: (settings) => Object.assign(settings.agentCredentials, { pollMs: 3_600_000 }),
      },
    );
    replicas.push(r);
    return r;
  }

  let a: TestService;
  let b: TestService;

  before(async () => {
    repo = groupsRepo({ edge: GROUP }, "edge");
    redis = await testRedis();
    a = await replica();
    b = await replica();
  });

  after(async () => {
    for (const agent of agents) agent.close();
    for (const r of replicas.splice(0)) await r.close();
    await redis?.close();
  });

  /** An agent connected over WebSocket to `r`, served edge. */
  async function connected(r: TestService): Promise<TestAgent> {
    const agent = new TestAgent({ transport: "websocket", url: r.url, token: "boot-token" });
    agents.push(agent);
    await agent.connect();
    const reply = await agent.send(hello());
    assert.ok(reply.remoteConfig, "served edge");
    return agent;
  }

  test("a revocation through replica A closes the agent's connection on B and B refuses it", async () => {
    const agent = await connected(b);
    const uid = uidToString(agent.uid);
    const token = offeredToken(agent.received[0]?.connectionSettings);
    assert.ok(token, "a token is offered");
    const ok = await postOpamp(
      b.url,
      encodeAgentToServer({ instanceUid: agent.uid, sequenceNum: 1n, ...hello() }),
      { token },
    );
    assert.equal(ok.status, 200);
    const ws = agent.socket;
    assert.ok(ws);
    let code: number | undefined;
    ws.once("close", (c) => {
      code = c;
    });
    const res = await fetch(`${a.api}/api/v1/agents/${uid}/revoke`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Opamp-Gitops-Actor": "alice@host" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    await waitFor("B closes the revoked agent's WebSocket", () => code !== undefined, {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    assert.equal(code, 1008);
    assert.equal(b.service.agentCredentials.revocation(uid)?.by.startsWith("api:alice"), true);
    const refused = await postOpamp(
      b.url,
      encodeAgentToServer({ instanceUid: agent.uid, sequenceNum: 2n, ...hello() }),
      { token },
    );
    assert.equal(refused.status, 401, "B refuses its token");
  });

  const commands = (agent: TestAgent) =>
    agent.received.filter((m) => (m.command as { type?: number } | null)?.type === 0).length;

  async function restart(
    path: string,
    via: TestService = a,
  ): Promise<Array<{ instanceUid: string; result: string }>> {
    const res = await fetch(`${via.api}/api/v1/${path}/restart`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Opamp-Gitops-Actor": "bob@host" },
      body: "{}",
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as Array<{ instanceUid: string; result: string }>;
  }

  test("restart through replica A reaches agents on B, by uid and by group", async () => {
    const one = await connected(b);
    const two = await connected(b);
    const here = await connected(a);
    const [uid1, uid2, uidA] = [one, two, here].map((x) => uidToString(x.uid)) as [
      string,
      string,
      string,
    ];
    const byUid = await restart(`agents/${uid1}`);
    assert.deepEqual(byUid, [{ instanceUid: uid1, group: "edge", result: "sent" }]);
    await waitFor("agent one gets RESTART", () => commands(one) === 1, { timeoutMs: 20_000 });
    assert.equal(commands(two), 0);
    const byGroup = await restart("groups/edge");
    const sent = byGroup.filter((o) => o.result === "sent").map((o) => o.instanceUid);
    for (const uid of [uid1, uid2, uidA]) assert.ok(sent.includes(uid), `${uid} in ${sent}`);
    await waitFor(
      "both B agents and A's get RESTART again",
      () => commands(one) === 2 && commands(two) === 1 && commands(here) === 1,
      { timeoutMs: 20_000 },
    );
    assert.ok(
      log.lines.some(
        (l) =>
          l.msg === "agent restart requested" &&
          l.instanceUid === uid2 &&
          String(l.by).startsWith("api:bob@host"),
      ),
      "B logs who asked",
    );
  });

  test("a restart asked of the non-writer replica shows on the status branch with who asked", async () => {
    const writer = (await waitForValue(
      "a status writer",
      async () => replicas.find((r) => r.service.status?.isWriter),
      (r) => r !== undefined,
    )) as TestService;
    const other = writer === a ? b : a;
    const agent = await connected(other);
    const uid = uidToString(agent.uid);
    const gitdir = join(repo.dir, ".git");
    const path = `status/agents/edge/${uid}.yaml`;
    const file = () =>
      git(gitdir, "for-each-ref", "refs/heads/opamp-status").trim()
        ? readStatusTree(gitdir, "opamp-status").get(path)
        : undefined;
    await waitForValue(
      "the agent's status file",
      async () => file(),
      (f) => f !== undefined,
    );
    const outcome = await restart(`agents/${uid}`, other);
    assert.deepEqual(outcome, [{ instanceUid: uid, group: "edge", result: "sent" }]);
    const recorded = await waitForValue(
      "the restart on the status branch",
      async () => file(),
      (f) => get(f, "lastCommand") !== undefined,
    );
    assert.equal(get(recorded, "lastCommand", "type"), "restart");
    assert.equal(get(recorded, "lastCommand", "result"), "sent");
    assert.match(String(get(recorded, "lastCommand", "by")), /^api:.+@host/);
    // Bounded: once the service forgets the agent, its file and its last command go.
    const lastKey = `${redis.prefix}:last-command`;
    assert.equal(await writer.serviceRedis.hexists(lastKey, uid), 1);
    agent.close();
    await waitForValue(
      "the disconnect stored",
      () => other.service.opamp.store.load(uid),
      (s) => s?.connected === false,
    );
    await writer.serviceRedis.del(`${redis.prefix}:agent:${uid}`);
    await writer.service.status?.reconcile([uid]);
    await waitForValue(
      "the file removed",
      async () => file(),
      (f) => f === undefined,
    );
    assert.equal(await writer.serviceRedis.hexists(lastKey, uid), 0);
  });
});
