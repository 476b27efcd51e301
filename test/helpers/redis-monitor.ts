/**
 * Counts the Redis commands that touch one test's key prefix, with MONITOR on a dedicated
 * connection: other tests (and other processes) share the server, so global counters such as
 * INFO commandstats would count their commands too. `settle()` sends a marker command and
 * waits until MONITOR has shown it, so every command executed before it has been seen.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

export interface PrefixMonitor {
  /** Commands seen so far that name the prefix in any argument: [command, ...args]. */
  readonly commands: string[][];
  /** Waits until every command executed so far has been seen. */
  settle(): Promise<void>;
  /** Empties `commands`. */
  reset(): void;
  stop(): Promise<void>;
}

export async function monitorPrefix(prefix: string): Promise<PrefixMonitor> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const monitor = await client.monitor();
  const commands: string[][] = [];
  const waiters = new Map<string, () => void>();
  monitor.on("monitor", (_time: string, args: string[]) => {
    const marker = args[0]?.toLowerCase() === "echo" ? waiters.get(args[1] ?? "") : undefined;
    if (marker) return marker();
    if (args.some((a) => a.includes(prefix))) commands.push(args);
  });
  const sender = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await sender.connect();
  return {
    commands,
    async settle() {
      const token = `monitor-settle-${randomBytes(6).toString("hex")}`;
      const seen = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("MONITOR never showed the marker")),
          10_000,
        );
        waiters.set(token, () => {
          clearTimeout(timer);
          waiters.delete(token);
          resolve();
        });
      });
      await sender.echo(token);
      await seen;
    },
    reset() {
      commands.length = 0;
    },
    async stop() {
      monitor.disconnect();
      client.disconnect();
      sender.disconnect();
    },
  };
}
