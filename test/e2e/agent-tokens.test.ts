/**
 * Per-agent tokens through the whole service (`--mint-agent-tokens`), over HTTP: an agent that
 * bootstraps with the fleet's token is offered its own token in its OpAMP connection settings
 * (headers), switches to it at once (its uid is not taken for another agent's), is served its
 * group with it; a token from the offer of another agent cannot claim this uid. Revoked
 * through the admin API, the token gets 401; a uid in fleet.yaml's `revoked:` likewise, until
 * it is removed from the list.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { Service } from "../../src/service/service.js";
import { helloAs, offeredToken, postOpamp, TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { groupsRepo } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 100}]
heartbeatInterval: 1s
`;
const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.AcceptsOpAMPConnectionSettings;

const hello = () => helloAs("edge", CAPS);

describe("per-agent tokens (--mint-agent-tokens)", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let url = "";
  let api = "";
  const log = capturedLogger("info");

  before(async () => {
    repo = groupsRepo({ edge: GROUP }, "edge");
    svc = await startTestService(
      { repo: repo.dir, mintAgentTokens: "true" },
      { logger: log.logger, agentTokens: "boot-token groups=edge\n" },
    );
    service = svc.service;
    url = svc.url;
    api = svc.api;
  });

  after(async () => {
    await svc?.close();
  });

  /** Bootstraps one agent and returns its uid and minted token. */
  async function bootstrap(): Promise<{ agent: TestAgent; uid: string; token: string }> {
    const agent = new TestAgent({ transport: "http", url, token: "boot-token" });
    const reply = await agent.send(hello());
    assert.ok(reply.remoteConfig, "served edge with the bootstrap token");
    const token = offeredToken(reply.connectionSettings);
    assert.ok(token, `a token is offered: ${JSON.stringify(reply.connectionSettings)}`);
    return { agent, uid: uidToString(agent.uid), token };
  }

  const poll = (uid: Uint8Array, token: string, seq: bigint) =>
    postOpamp(url, encodeAgentToServer({ instanceUid: uid, sequenceNum: seq, ...hello() }), {
      token,
    });

  test("the offered token works at once for its agent, is scoped, and 401 once revoked", async () => {
    const { agent, uid, token } = await bootstrap();
    // The agent switches to its own token while its bootstrap session still looks connected.
    const switched = await poll(agent.uid, token, 1n);
    assert.equal(switched.status, 200);
    const view = (await (await fetch(`${api}/api/v1/agents/${uid}`)).json()) as {
      group: string | null;
      credentials: { token?: { group: string } };
    };
    assert.equal(view.group, "edge");
    assert.equal(view.credentials.token?.group, "edge");
    // Another agent's uid cannot be claimed with it: that claimant is given a new uid.
    const other = await bootstrap();
    const stolen = await poll(other.agent.uid, token, 1n);
    assert.equal(stolen.status, 200);
    const answer = decodeServerToAgent(stolen.body) as {
      agentIdentification: { newInstanceUid: Uint8Array } | null;
      remoteConfig: unknown;
    };
    assert.ok(answer.agentIdentification?.newInstanceUid, "the claimant gets a new uid");
    assert.equal(answer.remoteConfig, null);
    assert.ok(!log.lines.some((l) => l.msg === "agent credential not issued"));
    // Revoked: 401 for the token, and the agent's bootstrap-free session is gone.
    const res = await fetch(`${api}/api/v1/agents/${uid}/revoke`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Opamp-Gitops-Actor": "alice@host" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { revoked: { by: string } };
    assert.match(body.revoked.by, /^api:alice@host via /);
    assert.equal((await poll(agent.uid, token, 2n)).status, 401);
    // The other agent's own token is untouched.
    assert.equal((await poll(other.agent.uid, other.token, 1n)).status, 200);
  });

  test("a uid in fleet.yaml's revoked: list is refused until it leaves the list", async () => {
    const { agent, uid, token } = await bootstrap();
    assert.equal((await poll(agent.uid, token, 1n)).status, 200);
    repo.write("fleet.yaml", `revoked:\n  - ${uid}\n`).commit("revoke one agent");
    await until(async () => (await poll(agent.uid, token, 2n)).status === 401);
    assert.equal(service.agentCredentials.revocation(uid)?.by.startsWith("git:"), true);
    repo.write("fleet.yaml", "revoked: []\n").commit("let it back");
    await until(async () => (await poll(agent.uid, token, 3n)).status === 200);
  });
});

async function until(probe: () => Promise<boolean>): Promise<void> {
  await waitFor("the poll's answer", probe, { timeoutMs: 15_000, intervalMs: 100 });
}
