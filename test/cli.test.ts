/**
 * The command line as a user runs it: a child process, its exit code and what it prints.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AgentCapabilities as Caps } from "../src/opamp/capabilities.js";
import { TestAgent } from "./helpers/agent.js";
import { run } from "./helpers/cli.js";
import { testRedis } from "./helpers/redis.js";
import { deferred } from "./helpers/teardown.js";
import { waitFor } from "./helpers/wait.js";

const defer = deferred();

const EXAMPLE = fileURLToPath(new URL("../../examples/repo", import.meta.url));
/** A PATH without redis-server, so no private one is started. */
const NO_REDIS_SERVER = { PATH: "/nonexistent" };

describe("opamp-gitops command line", () => {
  test("--help lists the commands and exits 0", async () => {
    const { code, stdout } = await run(["--help"]).exited;
    assert.equal(code, 0);
    assert.match(stdout, /serve/);
  });

  test("a bad setting exits 2 and names the setting", async () => {
    const { code, stderr } = await run(["serve", "--opamp-listen", "nowhere"]).exited;
    assert.equal(code, 2);
    assert.match(
      stderr,
      /invalid setting --opamp-listen: setting opampListen is "nowhere"; expected host:port/,
    );
  });

  test("a bad setting from the environment is reported the same way", async () => {
    const { code, stderr } = await run(["serve"], { OPAMP_GITOPS_MAX_CONNECTIONS: "lots" }).exited;
    assert.equal(code, 2);
    assert.match(
      stderr,
      /setting maxConnections is "lots"; expected a positive integer \(from OPAMP_GITOPS_MAX_CONNECTIONS\)/,
    );
  });

  test("a port already in use: a clear message and exit 1, for either listener", async () => {
    const redis = await testRedis();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const { port } = taken.address() as AddressInfo;
    defer(async () => {
      taken.close();
      await redis.close();
    });
    for (const flag of ["--opamp-listen", "--api-listen"]) {
      const other = flag === "--opamp-listen" ? "--api-listen" : "--opamp-listen";
      const r = await run([
        "serve",
        "--redis-prefix",
        redis.prefix,
        flag,
        `127.0.0.1:${port}`,
        other,
        "127.0.0.1:0",
      ]).exited;
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
      );
    }
  });

  test("settings that parse but cannot work: exit 2 naming the flag", async () => {
    const empty = join(mkdtempSync(join(tmpdir(), "tokens-")), "tokens");
    writeFileSync(empty, "# nobody yet\n\n");
    const cases: Array<[string[], RegExp]> = [
      [["--api-tokens-file", empty], /invalid setting --api-tokens-file: .* holds no token/],
      [["--opamp-tokens-file", empty], /invalid setting --opamp-tokens-file: .* holds no token/],
      [["--status-interval", "5ms"], /invalid setting --status-interval: must be at least 100ms/],
      [["--replica-timeout", "50ms"], /invalid setting --replica-timeout: must be at least 300ms/],
      [
        ["--malloc-trim-interval", "500ms"],
        /invalid setting --malloc-trim-interval: must be 0 \(never\) or at least 1s/,
      ],
      [["--branch", "a..b"], /invalid setting --branch: "a\.\.b" is not a valid branch name/],
      [["--status-branch", "main"], /invalid setting --status-branch: "main" is the config branch/],
    ];
    for (const [args, message] of cases) {
      const r = await run(["serve", ...args]).exited;
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  test("a bad --advertise-url, from a flag, the environment or a settings file: exit 2 naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "advertise-"));
    const file = join(dir, "settings.yaml");
    writeFileSync(file, "advertiseUrl: ftp://opamp.example.com/v1/opamp\n");
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [
        ["--advertise-url", "opamp.example.com:4320"],
        {},
        /invalid setting --advertise-url: setting advertiseUrl is "opamp\.example\.com:4320"; expected the OpAMP URL agents should use/,
      ],
      [
        [],
        { OPAMP_GITOPS_ADVERTISE_URL: "tcp://x" },
        /setting advertiseUrl is "tcp:\/\/x"; .*\(from OPAMP_GITOPS_ADVERTISE_URL\)/,
      ],
      [["--settings", file], {}, /setting advertiseUrl is "ftp:.*\(from .*settings\.yaml\)/],
      [
        ["--advertise-url", "wss://opamp.example.com/v1/opamp"],
        {},
        /invalid setting --advertise-url: .* uses TLS: give --advertise-ca <pem>/,
      ],
    ];
    for (const [args, env, message] of cases) {
      const r = await run(["serve", ...args], env).exited;
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  test("a listen host that does not resolve, or an unusable TLS key: exit 1 with what to fix", async () => {
    const redis = await testRedis();
    const dir = mkdtempSync(join(tmpdir(), "tls-"));
    writeFileSync(join(dir, "cert.pem"), "not a certificate\n");
    writeFileSync(join(dir, "key.pem"), "not a key\n");
    defer(async () => {
      await redis.close();
    });
    const base = ["serve", "--redis-prefix", redis.prefix, "--api-listen", "127.0.0.1:0"];
    const host = await run([...base, "--opamp-listen", "nonexistent.invalid:0"]).exited;
    assert.equal(host.code, 1, host.stderr);
    assert.match(
      host.stderr,
      /cannot listen on nonexistent\.invalid.*: the host name does not resolve/,
    );
    const tls = await run([
      ...base,
      "--opamp-listen",
      "127.0.0.1:0",
      "--tls-cert",
      join(dir, "cert.pem"),
      "--tls-key",
      join(dir, "key.pem"),
    ]).exited;
    assert.equal(tls.code, 1, tls.stderr);
    assert.match(tls.stderr, /the TLS certificate or key cannot be used .*check --tls-cert/);
    const url = await run(["agents", "--api-url", "localhost:4321"]).exited;
    assert.equal(url.code, 2);
    assert.match(url.stderr, /invalid setting --api-url: "localhost:4321" is not an http\(s\) URL/);
  });

  test("rollout and agents: a URL that is not the admin API, and no answer at all", async () => {
    const other = createServer();
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    other.on("connection", (socket) =>
      socket.end(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
      ),
    );
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    defer(async () => {
      other.close();
    });
    for (const args of [["agents"], ["rollout", "status"], ["rollout", "status", "edge"]]) {
      const r = await run([...args, "--api-url", url]).exited;
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /answered something other than the opamp-gitops admin API/);
    }
  });

  test("simulate with no server answering still stops after --duration", async () => {
    const r = await run([
      "simulate",
      "--url",
      "ws://127.0.0.1:1/v1/opamp",
      "--agents",
      "2",
      "--duration",
      "1",
      "--format",
      "json",
    ]).exited;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      (JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { connected: number }).connected,
      0,
    );
    assert.equal((await run(["simulate", "--url", "notaurl"]).exited).code, 2);
    assert.equal((await run(["simulate", "--url", "ws://h", "--duration", "abc"]).exited).code, 2);
  });

  test("an unknown flag is a usage error (exit 2)", async () => {
    assert.equal((await run(["serve", "--no-such-flag"]).exited).code, 2);
  });

  test("Redis unreachable and no redis-server to start: a clear message and exit 1", async () => {
    const { code, stderr } = await run(
      ["serve", "--redis", "redis://127.0.0.1:1", "--opamp-listen", "127.0.0.1:0"],
      NO_REDIS_SERVER,
    ).exited;
    assert.equal(code, 1);
    assert.match(
      stderr,
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED.*\); install Redis/,
    );
  });

  test("serve answers agents, logs JSON lines, and stops cleanly on SIGTERM", async () => {
    const redis = await testRedis();
    const p = run([
      "serve",
      "--opamp-listen",
      "127.0.0.1:0",
      "--api-listen",
      "127.0.0.1:0",
      "--redis-prefix",
      redis.prefix,
    ]);
    defer(async () => {
      p.child.kill("SIGKILL");
      await redis.close();
    });
    await waitFor("listening", () => /OpAMP server listening/.test(p.output()), {
      child: p.child,
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const line =
      p
        .output()
        .split("\n")
        .find((l) => l.includes("OpAMP server listening")) ?? "";
    const { port } = JSON.parse(line) as { port: number };
    const agent = new TestAgent({ transport: "http", url: `http://127.0.0.1:${port}/v1/opamp` });
    assert.equal((await agent.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
    assert.equal(
      await redis.redis.sismember(
        `${redis.prefix}:agents`,
        [...Buffer.from(agent.uid).toString("hex")]
          .join("")
          .replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
      ),
      1,
    );
    p.child.kill("SIGTERM");
    assert.equal((await p.exited).code, 0);
  });

  test("validate: the example repository is valid (exit 0)", async () => {
    const { code, stdout } = await run(["validate", EXAMPLE]).exited;
    assert.equal(code, 0, stdout);
    assert.match(stdout, /4 groups, 0 errors, 0 warnings: valid/);
  });

  test("validate: an undefined exporter is reported with file:line:col and exit 1, in every format", async () => {
    const dir = mkdtempSync(join(tmpdir(), "validate-"));
    cpSync(EXAMPLE, dir, { recursive: true });
    const file = join(dir, "groups/gateway/collector.yaml");
    const text = readFileSync(file, "utf8");
    writeFileSync(
      file,
      text.replace("exporters: [otlp, spanmetrics]", "exporters: [otlp/tempo, spanmetrics]"),
    );
    const line =
      text.split("\n").findIndex((l) => l.includes("exporters: [otlp, spanmetrics]")) + 1;

    const textRun = await run(["validate", dir]).exited;
    assert.equal(textRun.code, 1);
    assert.match(
      textRun.stdout,
      new RegExp(
        `groups/gateway/collector\\.yaml:${line}:\\d+ OTELCOL_UNDEFINED_COMPONENT pipeline traces uses exporter "otlp/tempo", which is not defined`,
      ),
    );
    const github = await run(["validate", "--format", "github", dir]).exited;
    assert.equal(github.code, 1);
    assert.match(
      github.stdout,
      new RegExp(
        `::error file=[^,]*groups/gateway/collector\\.yaml,line=${line},col=\\d+,title=OTELCOL_UNDEFINED_COMPONENT::`,
      ),
    );
    const json = await run(["validate", "--format", "json", dir]).exited;
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as {
      valid: boolean;
      findings: Array<{ code: string; line: number }>;
    };
    assert.equal(report.valid, false);
    assert.ok(
      report.findings.some((f) => f.code === "OTELCOL_UNDEFINED_COMPONENT" && f.line === line),
    );
  });

  test("validate: warnings fail only with --strict; usage errors exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "validate-"));
    cpSync(EXAMPLE, dir, { recursive: true });
    const file = join(dir, "groups/gateway/collector.yaml");
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace("  debug:\n", "  debug/unused: {}\n  debug:\n"),
    );
    assert.equal((await run(["validate", dir]).exited).code, 0);
    const strict = await run(["validate", "--strict", dir]).exited;
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /OTELCOL_UNUSED_COMPONENT/);
    assert.equal((await run(["validate", join(dir, "missing")]).exited).code, 2);
    assert.equal((await run(["validate", "--format", "xml", dir]).exited).code, 2);
  });

  test("simulate: agents connect to a running server and report; bad flags exit 2", async () => {
    const redis = await testRedis();
    const serve = run([
      "serve",
      "--opamp-listen",
      "127.0.0.1:0",
      "--api-listen",
      "127.0.0.1:0",
      "--redis-prefix",
      redis.prefix,
    ]);
    defer(async () => {
      serve.child.kill("SIGKILL");
      await redis.close();
    });
    await waitFor("listening", () => /OpAMP server listening/.test(serve.output()), {
      child: serve.child,
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const line =
      serve
        .output()
        .split("\n")
        .find((l) => l.includes("OpAMP server listening")) ?? "";
    const { port } = JSON.parse(line) as { port: number };
    const url = `ws://127.0.0.1:${port}/v1/opamp`;
    const sim = await run([
      "simulate",
      "--url",
      url,
      "--agents",
      "5",
      "--duration",
      "1",
      "--format",
      "json",
      "--attributes",
      "host.role=edge",
    ]).exited;
    assert.equal(sim.code, 0, sim.stderr);
    const first = JSON.parse(sim.stdout.split("\n")[0] ?? "") as {
      agents: number;
      connected: number;
    };
    assert.deepEqual([first.agents, first.connected], [5, 5]);
    assert.equal(await redis.redis.scard(`${redis.prefix}:agents`), 5);
    // Several URLs, as behind a load balancer: agents that start on one nobody answers
    // fail over to the next.
    const dead = "ws://127.0.0.1:1/v1/opamp";
    const pool = await run([
      "simulate",
      "--url",
      `${dead},${url}`,
      "--agents",
      "4",
      "--duration",
      "1",
      "--format",
      "json",
    ]).exited;
    assert.equal(pool.code, 0, pool.stderr);
    const spread = JSON.parse(pool.stdout.split("\n")[0] ?? "") as {
      connected: number;
      byUrl: Record<string, number>;
    };
    assert.deepEqual([spread.connected, spread.byUrl], [4, { [url]: 4 }]);
    assert.equal((await run(["simulate", "--url", `${url},nota`]).exited).code, 2);
    assert.equal((await run(["simulate", "--url", url, "--agents", "many"]).exited).code, 2);
    assert.equal((await run(["simulate", "--url", url, "--attributes", "novalue"]).exited).code, 2);
  });
});
