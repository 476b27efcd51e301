/**
 * Pushing a ref with a caller-built pack over smart HTTP (src/sync/receive-pack.ts), against
 * `git http-backend`: the ref moves and the remote's objects are whole; a ref that moved is
 * answered "moved" with nothing sent; a pack the server cannot store, an update a hook
 * declines, a refused credential, a server that does not speak the protocol and one that
 * answers without end each get their error; pkt-lines round-trip.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import {
  AuthenticationError,
  PushFailedError,
  RemoteUnreachableError,
} from "../../src/sync/errors.js";
import { createHttpClient } from "../../src/sync/http-client.js";
import { parsePktLines, pktLine, pushPack } from "../../src/sync/receive-pack.js";
import type { RemoteCall } from "../../src/sync/remote-fetch.js";
import { GitHttpServer, httpBackendPath } from "./helpers/git-http-server.js";
import { bareRepo, cleanup, git, TestRepo, tempDir } from "./helpers/git-repo.js";

const skip = httpBackendPath() ? false : "git-http-backend is not installed";
const REF = "refs/heads/main";

/** The pack of what `tip` adds to `base`, as Git itself builds it. */
function gitPack(repo: TestRepo, tip: string, base?: string): Uint8Array[] {
  const revs = base ? `${tip}\n^${base}\n` : `${tip}\n`;
  return [
    execFileSync("git", ["pack-objects", "--stdout", "--revs", "-q"], {
      cwd: repo.dir,
      input: revs,
    }),
  ];
}

describe("pushing with a caller-built pack (git-receive-pack)", { skip }, () => {
  let root: string;
  let remote: string;
  let server: GitHttpServer;
  let work: TestRepo;
  const call = (o: Partial<RemoteCall> = {}): RemoteCall => ({
    http: createHttpClient({ idleTimeoutMs: 5_000 }),
    url: server.url("fleet.git"),
    headers: {},
    withAuth: false,
    ...o,
  });

  before(async () => {
    root = tempDir();
    remote = bareRepo(root, "fleet.git");
    work = new TestRepo();
    server = await GitHttpServer.start({ root, token: "s3cret" });
  });
  after(async () => {
    await server.close();
    cleanup(root, work.dir);
  });
  const authorized = (o: Partial<RemoteCall> = {}) =>
    call({ headers: { authorization: "Bearer s3cret" }, withAuth: true, ...o });

  test("creates the ref, then moves it; the remote holds every object", async () => {
    const first = work.write("a.txt", "one\n").commit("first");
    let built = 0;
    const pack = (tip: string, base?: string) => async () => {
      built++;
      return gitPack(work, tip, base);
    };
    const r1 = await pushPack(authorized(), {
      ref: REF,
      oldOid: undefined,
      newOid: first,
      pack: pack(first),
    });
    assert.equal(r1, "published");
    assert.equal(git(remote, "rev-parse", REF), first);
    const second = work.write("dir/b.txt", "two\n").commit("second");
    const r2 = await pushPack(authorized(), {
      ref: REF,
      oldOid: first,
      newOid: second,
      pack: pack(second, first),
    });
    assert.equal(r2, "published");
    assert.equal(git(remote, "rev-parse", REF), second);
    assert.equal(git(remote, "show", `${REF}:dir/b.txt`), "two");
    git(remote, "fsck", "--full", "--strict", "--no-dangling");
    assert.equal(built, 2);
  });

  test("a ref that is not where the push expects it is 'moved', and nothing is sent", async () => {
    const head = git(remote, "rev-parse", REF);
    const stale = git(remote, "rev-parse", `${REF}^`);
    const next = work.write("c.txt", "three\n").commit("third");
    const posts = server.requests.filter((r) => r.method === "POST").length;
    let built = 0;
    const result = await pushPack(authorized(), {
      ref: REF,
      oldOid: stale,
      newOid: next,
      pack: async () => {
        built++;
        return gitPack(work, next, stale);
      },
    });
    assert.equal(result, "moved");
    assert.equal(built, 0, "the pack is not built");
    assert.equal(server.requests.filter((r) => r.method === "POST").length, posts);
    assert.equal(git(remote, "rev-parse", REF), head);
    // Pushing to a ref that does not exist yet, expecting it to: moved as well.
    const absent = await pushPack(authorized(), {
      ref: "refs/heads/nowhere",
      oldOid: head,
      newOid: next,
      pack: async () => gitPack(work, next, head),
    });
    assert.equal(absent, "moved");
  });

  test("a pack the server cannot store fails the push; the ref stays", async () => {
    const head = git(remote, "rev-parse", REF);
    const next = work.write("d.txt", "four\n").commit("fourth");
    const garbage = Buffer.from("PACK\0\0\0\x02\0\0\0\x01not a pack entry at all");
    await assert.rejects(
      pushPack(authorized(), {
        ref: REF,
        oldOid: head,
        newOid: next,
        pack: async () => [garbage],
      }),
      (err: unknown) => {
        assert.ok(err instanceof PushFailedError);
        assert.equal(err.code, "SYNC_PUSH_FAILED");
        assert.match(err.message, /unpack/);
        return true;
      },
    );
    assert.equal(git(remote, "rev-parse", REF), head);
  });

  test("an update a hook declines (a protected branch) fails with the hook's reason", async () => {
    const hook = join(remote, "hooks", "pre-receive");
    writeFileSync(hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n", { mode: 0o755 });
    try {
      const head = git(remote, "rev-parse", REF);
      const next = work.write("e.txt", "five\n").commit("fifth");
      await assert.rejects(
        pushPack(authorized(), {
          ref: REF,
          oldOid: head,
          newOid: next,
          pack: async () => gitPack(work, next, head),
        }),
        (err: unknown) =>
          err instanceof PushFailedError && /failed: pre-receive hook declined$/.test(err.message),
      );
      assert.equal(git(remote, "rev-parse", REF), head);
    } finally {
      rmSync(hook);
    }
  });

  test("a refused credential is an AuthenticationError; none sent asks for one", async () => {
    const head = git(remote, "rev-parse", REF);
    const next = work.head();
    const req = { ref: REF, oldOid: head, newOid: next, pack: async () => [] };
    await assert.rejects(
      pushPack(call({ headers: { authorization: "Bearer wrong" }, withAuth: true }), req),
      (err: unknown) =>
        err instanceof AuthenticationError &&
        /refused the configured credentials/.test(err.message),
    );
    await assert.rejects(
      pushPack(call(), req),
      (err: unknown) =>
        err instanceof AuthenticationError && /requires authentication/.test(err.message),
    );
  });

  test("a server that does not speak the protocol is unreachable, not a Git remote", async () => {
    const html = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>sign in</html>");
    });
    await new Promise<void>((r) => html.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(html.address() as AddressInfo).port}/fleet.git`;
      await assert.rejects(
        pushPack(call({ url }), {
          ref: REF,
          oldOid: undefined,
          newOid: work.head(),
          pack: async () => [],
        }),
        (err: unknown) =>
          err instanceof RemoteUnreachableError &&
          /not a Git smart-HTTP server \(content type text\/html\)/.test(err.message),
      );
    } finally {
      html.closeAllConnections();
      await new Promise<void>((r) => html.close(() => r()));
    }
  });
});

describe("a remote's answers are bounded", () => {
  test("an advertisement over 32 MiB is refused as unreachable, not read on", async () => {
    let sent = 0;
    const flood = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/x-git-receive-pack-advertisement" });
      const block = Buffer.alloc(1024 * 1024, "0");
      const more = () => {
        while (sent < 64 && !res.destroyed) {
          sent++;
          if (!res.write(block)) return void res.once("drain", more);
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => flood.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(flood.address() as AddressInfo).port}/fleet.git`;
      const c: RemoteCall = { http: createHttpClient(), url, headers: {}, withAuth: false };
      let built = false;
      await assert.rejects(
        pushPack(c, {
          ref: REF,
          oldOid: undefined,
          newOid: "1".repeat(40),
          pack: async () => {
            built = true;
            return [];
          },
        }),
        (err: unknown) =>
          err instanceof RemoteUnreachableError && /response over 33554432 bytes/.test(err.message),
      );
      assert.equal(built, false);
    } finally {
      flood.closeAllConnections();
      await new Promise<void>((r) => flood.close(() => r()));
    }
  });
});

describe("pkt-lines", () => {
  test("lines and flushes round-trip", () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.string({ minLength: 1, maxLength: 300 }), { nil: null })),
        (lines) => {
          const buf = Buffer.concat(lines.map(pktLine));
          assert.deepEqual(parsePktLines(buf), lines);
        },
      ),
    );
  });

  test("a length that is not hex, too short or past the end is refused", () => {
    for (const bad of ["zzzz", "0003", "0010abc", "00 5x"])
      assert.throws(() => parsePktLines(Buffer.from(bad)), /malformed pkt-line at byte 0/);
  });
});
