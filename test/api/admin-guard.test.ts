/**
 * The admin API against other web sites and hostile clients: Host checked (DNS rebinding),
 * state-changing requests need JSON and no foreign Origin (CSRF), webhook bodies cut at 1 MiB,
 * secrets compared over digests, tokens replaceable, and a non-loopback listener without
 * tokens refused at start (exit 2). The CLI's own client keeps working.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { secretsEqual } from "../../src/api/webhook.js";
import { ApiClient, ApiRefusedError } from "../../src/commands/api-client.js";
import type { Service } from "../../src/service/service.js";
import { loadSettings, SettingsError } from "../../src/settings.js";
import { run } from "../helpers/cli.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const defer = deferred();

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

describe("admin API guard", () => {
  let svc: TestService;
  let service: Service;
  let port = 0;

  before(async () => {
    const secret = join(tempDir("opamp-gitops-hook-"), "secret");
    writeFileSync(secret, "gitlab-secret\n");
    svc = await startTestService({
      apiAllowedHosts: "opamp.example.com, Admin.Internal",
      webhookSecretFile: secret,
    });
    service = svc.service;
    port = svc.apiPort;
  });

  after(async () => {
    await svc?.close();
  });

  /** One request with exactly these headers (Host included). */
  const call = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, method, path, headers, setHost: false },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  const host = () => `127.0.0.1:${port}`;
  const json = { "Content-Type": "application/json" };

  test("Host: IP addresses, localhost and configured names pass; any other name is refused (403)", async () => {
    for (const h of [
      host(),
      `localhost:${port}`,
      `[::1]:${port}`,
      "opamp.example.com",
      "admin.internal:4321",
    ])
      assert.equal((await call("GET", "/api/v1/agents", { Host: h })).status, 200, h);
    const refused = await call("GET", "/api/v1/agents", { Host: "attacker.example:4321" });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, "HOST_NOT_ALLOWED");
    assert.match(refused.body.error?.message ?? "", /--api-allowed-hosts/);
    assert.equal((await call("GET", "/metrics", { Host: "rebind.example" })).status, 403);
    assert.equal((await call("GET", "/healthz", { Host: "bad host name" })).status, 403);
  });

  test("POST needs Content-Type: application/json (415) and no foreign Origin (403)", async () => {
    const path = "/api/v1/rollouts/nope/pause";
    const noType = await call("POST", path, { Host: host() });
    assert.equal(noType.status, 415);
    assert.equal(noType.body.error?.code, "CONTENT_TYPE");
    const form = await call("POST", path, { Host: host(), "Content-Type": "text/plain" }, "x");
    assert.equal(form.status, 415);
    for (const origin of ["https://evil.example", "null", `http://127.0.0.1:${port + 1}`]) {
      const foreign = await call("POST", path, { Host: host(), Origin: origin, ...json }, "{}");
      assert.equal(foreign.status, 403, origin);
      assert.equal(foreign.body.error?.code, "FOREIGN_ORIGIN");
    }
    // Same origin, or no Origin (curl, the CLI): the request reaches its route.
    const same = await call(
      "POST",
      path,
      { Host: host(), Origin: `http://${host()}`, ...json },
      "{}",
    );
    assert.equal(same.status, 404);
    assert.equal(same.body.error?.code, "ROLLOUT_UNKNOWN_GROUP");
    assert.equal((await call("POST", path, { Host: host(), ...json }, "{}")).status, 404);
  });

  test("the CLI's client sends JSON and passes the guard", async () => {
    const client = new ApiClient({ apiUrl: `http://127.0.0.1:${port}`, actor: "test" });
    await assert.rejects(
      client.post("/api/v1/rollouts/nope/abort", () => true),
      (err: unknown) => err instanceof ApiRefusedError && err.status === 404,
    );
  });

  test("webhook: secrets compared over digests; a body past 1 MiB is cut (413) and not read", async () => {
    assert.equal(secretsEqual(Buffer.from("a"), Buffer.from("a-much-longer-secret")), false);
    assert.equal(secretsEqual(Buffer.from("same"), Buffer.from("same")), true);
    const hook = (token: string) =>
      call("POST", "/hooks/git", { Host: host(), "X-Gitlab-Token": token, ...json }, "{}");
    assert.equal((await hook("gitlab")).status, 401);
    assert.equal((await hook("gitlab-secret-and-more")).status, 401);
    assert.equal((await hook("gitlab-secret")).status, 202);
    // A GitHub-style signed body need not be JSON-typed (GitHub may send form bodies).
    const sig = createHmac("sha256", "gitlab-secret").update("ref=x").digest("hex");
    const signed = await call(
      "POST",
      "/hooks/git",
      {
        Host: host(),
        "X-Hub-Signature-256": `sha256=${sig}`,
        "Content-Type": "application/x-www-form-urlencoded",
      },
      "ref=x",
    );
    assert.equal(signed.status, 202);
    // A declared length over the limit is refused before reading.
    const declared = await call("POST", "/hooks/git", {
      Host: host(),
      "Content-Length": String(2 * 1024 * 1024),
      ...json,
    });
    assert.equal(declared.status, 413);
    // A chunked body that never ends: the answer comes after ~1 MiB and the socket closes,
    // while the client would still be sending (it stops at 64 MiB at most).
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => (answer += d));
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    socket.write(
      `POST /hooks/git HTTP/1.1\r\nHost: ${host()}\r\nX-Gitlab-Token: gitlab-secret\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    let open = true;
    void closed.then(() => (open = false));
    while (open && sent < 64 * 1024 * 1024) {
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      const ok = socket.write("\r\n");
      sent += chunk.length;
      if (!ok) await Promise.race([new Promise((r) => socket.once("drain", r)), closed]);
    }
    if (open) socket.end("0\r\n\r\n"); // a server that read it all answers only now
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /Connection: close/i);
    assert.ok(sent < 64 * 1024 * 1024, `the server kept reading (${sent} bytes sent)`);
  });

  test("admin tokens can be replaced while serving", async () => {
    service.api.setTokens(["rotated"]);
    defer(() => service.api.setTokens([]));
    assert.equal((await call("GET", "/api/v1/agents", { Host: host() })).status, 401);
    const ok = await call("GET", "/api/v1/agents", {
      Host: host(),
      Authorization: "Bearer rotated",
    });
    assert.equal(ok.status, 200);
  });

  test("an event stream opened with an admin token that is then removed ends; one of a kept token stays", async () => {
    service.api.setTokens(["leaked", "kept"]);
    defer(() => service.api.setTokens([]));
    const open = async (token: string) => {
      const res = await fetch(`http://${host()}/api/v1/events`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /event: hello/);
      let done = false;
      void (async () => {
        while (!(await reader.read()).done);
      })()
        .catch(() => {})
        .finally(() => {
          done = true;
        });
      return { reader, isDone: () => done };
    };
    const leaked = await open("leaked");
    const kept = await open("kept");
    defer(() => kept.reader.cancel());
    assert.equal(service.api.setTokens(["kept"]), 1, "one stream ended");
    await waitFor("the removed token's stream ends", () => leaked.isDone());
    assert.equal(kept.isDone(), false, "the kept token's stream is still open");
    assert.equal(service.api.setTokens(["kept", "other"]), 0);
  });
});

describe("admin API listen address", () => {
  test("a non-loopback address without admin tokens is refused unless explicitly allowed", () => {
    assert.throws(
      () => loadSettings({ apiListen: "0.0.0.0:4321" }, {}),
      (err: unknown) =>
        err instanceof SettingsError &&
        err.setting === "--api-listen" &&
        /not a loopback address.*--api-tokens-file.*--api-insecure-no-auth/.test(err.message),
    );
    assert.equal(
      loadSettings({ apiListen: "0.0.0.0:4321", apiInsecureNoAuth: true }, {}).apiHost,
      "0.0.0.0",
    );
    const tokens = join(tempDir("opamp-gitops-api-"), "tokens");
    writeFileSync(tokens, "admin\n");
    assert.deepEqual(
      loadSettings({ apiListen: "10.1.2.3:4321", apiTokensFile: tokens }, {}).apiTokens,
      ["admin"],
    );
    for (const loopback of ["127.0.0.1:0", "[::1]:0", "localhost:0"])
      assert.equal(loadSettings({ apiListen: loopback }, {}).apiTokens.length, 0);
  });

  test("serve exits 2 with the message", async () => {
    const { code, stderr } = await run(["serve", "--api-listen", "0.0.0.0:0"]).exited;
    assert.equal(code, 2);
    assert.match(stderr, /invalid setting --api-listen: 0\.0\.0\.0 is not a loopback address/);
    assert.match(stderr, /--api-insecure-no-auth/);
  });
});
