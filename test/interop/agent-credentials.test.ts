/**
 * Agent credentials with an independent peer: the opamp-go client (test/interop/go, -csr mode)
 * against the whole service serving TLS on the agent port. The agent bootstraps with a client
 * certificate the operator mapped to the edge group, sends a CSR, receives a certificate
 * scoped to edge in its OpAMP connection settings, reconnects with it over mutual TLS and is
 * served edge; `opamp-gitops agents revoke <uid>` then closes its connection, its reconnects
 * and a fresh handshake with that certificate are refused, and the status branch records who
 * revoked it. Run over WebSocket and over plain HTTP. The CA key never reaches Redis or Git.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { run as runCli } from "../helpers/cli.js";
import { buildGoProgram, findGo, type GoEvent } from "../helpers/go-program.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { git, readStatusTree } from "../status/helpers.js";
import { groupsRepo } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 100}]
heartbeatInterval: 1s
`;

/** The Go program as a child whose JSON-line events are read as they come. */
class GoAgent {
  readonly events: GoEvent[] = [];
  readonly child: ChildProcess;
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(bin: string, args: string[]) {
    this.child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line.trim() === "") return;
      this.events.push(JSON.parse(line) as GoEvent);
    });
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve(code)));
  }

  /** Waits for an event named `name` (at most `ms`); fails with everything seen so far. */
  async next(name: string, ms = 60_000): Promise<GoEvent> {
    return waitFor(`a "${name}" event`, () => this.events.find((e) => e.event === name), {
      timeoutMs: ms,
      intervalMs: 20,
      child: this.child,
      detail: () => `${JSON.stringify(this.events)}\n${this.stderr}`,
    });
  }
}

describe("agent credentials with the opamp-go client (CSR, mTLS, revocation)", () => {
  let repo: TestRepo;
  let svc: TestService;
  let certs: TestCerts;
  let files: Record<string, string>;
  let opampPort = 0;
  let apiUrl = "";
  let bin = "";
  let workDir = "";
  let skip: string | undefined;
  const agents: GoAgent[] = [];
  const log = capturedLogger("info");

  before(async () => {
    const found = findGo();
    if (!("go" in found)) {
      skip = found.reason;
      return;
    }
    workDir = mkdtempSync(join(tmpdir(), "opamp-csr-"));
    bin = join(workDir, "interop");
    await buildGoProgram(found.go, bin);
    certs = makeTestCerts();
    files = {};
    for (const [name, bytes] of Object.entries({
      ca: certs.ca,
      caKey: certs.caKey,
      serverCert: certs.serverCert,
      serverKey: certs.serverKey,
      clientCert: certs.clientCert,
      clientKey: certs.clientKey,
    })) {
      files[name] = join(workDir, `${name}.pem`);
      writeFileSync(files[name], bytes);
    }
    repo = groupsRepo({ edge: GROUP }, "edge");
    svc = await startTestService(
      {
        repo: repo.dir,
        tlsCert: files.serverCert,
        tlsKey: files.serverKey,
        // The bootstrap certificate (CN agent-1, same CA) may be served edge only.
        opampClientGroups: JSON.stringify({ "agent-1": ["edge"] }),
        agentCaCert: files.ca,
        agentCaKey: files.caKey,
        agentCertValidity: "1h",
      },
      { logger: log.logger },
    );
    opampPort = svc.opampPort;
    apiUrl = svc.api;
  });

  after(async () => {
    for (const a of agents) a.child.kill("SIGKILL");
    await svc?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  for (const transport of ["ws", "http"] as const) {
    test(`over ${transport}: CSR → certificate → mTLS with it → revoked and refused`, async (t) => {
      if (skip) return t.skip(`go not found: ${skip}`);
      const agent = new GoAgent(bin, [
        "-csr",
        "-url",
        `https://127.0.0.1:${opampPort}/v1/opamp`,
        "-transport",
        transport,
        "-ca",
        files.ca as string,
        "-cert",
        files.clientCert as string,
        "-key",
        files.clientKey as string,
        "-role",
        "edge",
        "-timeout",
        "60s",
      ]);
      agents.push(agent);
      const uid = (await agent.next("start")).instanceUid as string;

      // The certificate: bound to this uid and the edge group, the key stayed with the agent.
      const cert = await agent.next("certificate");
      assert.equal(cert.cn, uid);
      assert.deepEqual(
        [...(cert.uris as string[])].sort(),
        [`urn:opamp-gitops:agent:${uid}`, "urn:opamp-gitops:group:edge"].sort(),
      );
      assert.equal(cert.privateKeyLen, 0);
      assert.ok((cert.caCertLen as number) > 0, "ca_cert names the signing CA");

      // Reconnected with it over mTLS, and served edge (the certificate's scope allows it).
      await agent.next("issued_connected");
      await agent.next("remote_config").catch(async (err) => {
        const v = await (await fetch(`${apiUrl}/api/v1/agents/${uid}`)).text();
        const mine = log.lines.filter(
          (l) => JSON.stringify(l).includes(uid) || Number(l.level) >= 40,
        );
        throw new Error(
          `${(err as Error).message}\n${v}\n${mine.map((l) => JSON.stringify(l)).join("\n")}`,
        );
      });
      const view = (await (await fetch(`${apiUrl}/api/v1/agents/${uid}`)).json()) as {
        group: string | null;
        credentials: { certificate?: { serial: string; group: string } };
      };
      assert.equal(view.group, "edge");
      assert.equal(view.credentials.certificate?.group, "edge");
      assert.equal(view.credentials.certificate?.serial, cert.serial);

      // Revoked through the CLI: the connection is closed and every retry refused.
      const revoke = runCli(["agents", "revoke", uid, "--api-url", apiUrl]);
      const done = await revoke.exited;
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, new RegExp(`revoked ${uid} \\(at .* by api:`));
      const refused = await agent.next("refused");
      assert.ok(refused.error, JSON.stringify(refused));
      const handshake = await agent.next("handshake");
      t.diagnostic(`refused: ${refused.error}; new handshake: ${handshake.outcome}`);
      assert.doesNotMatch(
        String(handshake.outcome),
        /^answered/,
        "no HTTP answer after a revoked handshake",
      );
      assert.equal(await agent.exited, 0, agent.stderr);

      // Recorded on the status branch: revoked, when and by whom.
      const tree = await waitForRevokedAgent(repo.dir, uid);
      assert.match(String(tree.by), /^api:/);
      assert.ok(!Number.isNaN(Date.parse(String(tree.at))));
    });
  }

  test("one signature per agent, counted in /metrics", async (t) => {
    if (skip) return t.skip(`go not found: ${skip}`);
    const text = await (await fetch(`${apiUrl}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    assert.equal(value("opamp_gitops_agent_certificates_signed_total"), 2, text.slice(0, 400));
    assert.equal(value("opamp_gitops_agent_csr_rate_limited_total"), 0);
  });

  test("the CA key is in no Redis value and no Git object", async (t) => {
    if (skip) return t.skip(`go not found: ${skip}`);
    const keyBody = certs.caKey
      .toString()
      .replace(/-----[^-]+-----/g, "")
      .replace(/\s+/g, "");
    const probe = keyBody.slice(20, 60);
    const keys = await svc.serviceRedis.keys(`${svc.redis.prefix}:*`);
    for (const key of keys) {
      const type = await svc.serviceRedis.type(key);
      const dump = await svc.serviceRedis.dumpBuffer(key);
      assert.ok(!dump?.toString("latin1").includes(probe), `${key} (${type}) holds the CA key`);
    }
    const { execFileSync } = await import("node:child_process");
    const objects = execFileSync("git", ["log", "-p", "--all"], {
      cwd: repo.dir,
      maxBuffer: 1 << 28,
    });
    assert.ok(!objects.toString().includes(probe));
    assert.ok(!log.lines.some((l) => JSON.stringify(l).includes(probe)), "no log line holds it");
  });
});

/** Polls the status branch until the agent's file says it is revoked; returns that record. */
async function waitForRevokedAgent(dir: string, uid: string): Promise<Record<string, unknown>> {
  const gitdir = join(dir, ".git");
  return waitFor(
    `agents/${uid}.yaml to record the revocation`,
    () => {
      const head = git(gitdir, "for-each-ref", "--format=%(objectname)", "refs/heads/opamp-status");
      const tree = head ? readStatusTree(gitdir, "opamp-status") : new Map();
      for (const [path, file] of tree)
        if (path.endsWith(`/${uid}.yaml`) && file.revoked)
          return file.revoked as Record<string, unknown>;
      return undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}
