/**
 * A private redis-server on a free port, with AOF (fsync always), that a test can stop and
 * start again: a Redis restart or outage under a running service, nothing lost on disk.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import type { Defer } from "./teardown.js";
import { waitFor } from "./wait.js";

/**
 * A started PrivateRedis on a free port with a temporary directory (named after `name`);
 * `defer` kills it and removes the directory after the test.
 */
export async function startPrivateRedis(defer: Defer, name: string): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const redis = new PrivateRedis(await freePort(), dir);
  defer(() => redis.stop("kill"));
  await redis.start();
  return redis;
}

export class PrivateRedis {
  #proc?: ChildProcess;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#proc = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
      ],
      { stdio: "ignore" },
    );
    await waitFor(
      "redis-server to start",
      async () => {
        const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null });
        probe.on("error", () => {});
        await probe
          .connect()
          .then(() => probe.ping())
          .finally(() => probe.disconnect());
        return true;
      },
      { ignoreErrors: true, intervalMs: 50 },
    );
  }

  /** SHUTDOWN (saves and exits) or SIGKILL. */
  async stop(how: "shutdown" | "kill"): Promise<void> {
    const proc = this.#proc;
    // Exited, or killed by a signal (exitCode stays null then): a second stop is a no-op.
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    if (how === "kill") proc.kill("SIGKILL");
    else {
      const c = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null });
      c.on("error", () => {});
      await c.connect();
      await c.call("SHUTDOWN").catch(() => {}); // the connection drops as it exits
      c.disconnect();
    }
    await exited;
  }
}
