/**
 * The Redis connection of the per-agent commands (src/opamp: the agent store and replica
 * liveness), behind a small interface. It is a node-redis client, not ioredis like every
 * other connection: these commands run for every agent that connects, reports or leaves,
 * and node-redis encodes and decodes them for a quarter of ioredis' CPU (measured: an HSET
 * of a stored agent 7.5 µs against 30 µs, an HGETALL 8 µs against 26 µs; README "Sizing").
 *
 * Contract:
 * - Commands reach Redis in call order, on one connection; the commands of one event loop
 *   turn leave in one write (node-redis corks the socket and writes on setImmediate).
 * - Replies: bulk strings as Buffers, integers as numbers, nil as null, arrays as arrays,
 *   simple strings ("OK") as strings. An error reply rejects with that error.
 * - While Redis cannot be reached, commands wait for the reconnect (capped backoff, forever),
 *   unless `offlineQueue: false`: then they reject at once. Connection errors are logged at
 *   warn, the first at once and then at most one per 30 s with how many were left out.
 * - `close()` waits for the replies of commands sent, at most `closeWaitMs` (with Redis gone
 *   they would never come), then rejects those still unanswered and drops the connection;
 *   idempotent. The caller closes it after everything that sends on it stopped.
 */
import { createHash } from "node:crypto";
import { createClient, RESP_TYPES } from "@redis/client";
import type { Logger } from "pino";

export type RedisArg = string | Buffer;
export type RedisReply = null | number | string | Buffer | RedisReply[];

/** A Lua script with its SHA-1, for EVALSHA. */
export interface LuaScript {
  readonly lua: string;
  readonly sha1: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha1: createHash("sha1").update(lua).digest("hex") };
}

/** The commands of the per-agent connection. Shared by every caller, in call order. */
export interface AgentRedis {
  /** One command, e.g. `call("HSET", key, "field", value)`. */
  call(...args: RedisArg[]): Promise<RedisReply>;
  /** Runs `script` by its SHA-1 (sending its text once Redis answers NOSCRIPT). */
  evalScript(
    script: LuaScript,
    keys: readonly string[],
    args: readonly RedisArg[],
  ): Promise<RedisReply>;
  /** Commands in one MULTI/EXEC; their replies in order. */
  transaction(commands: readonly (readonly RedisArg[])[]): Promise<RedisReply[]>;
  /**
   * Resolves once first connected (commands sent before wait for it, or with `offlineQueue:
   * false` reject); never rejects, and resolves at close() if that came first.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Bytes of commands one event loop turn writes at once (the socket's high-water mark). */
const TURN_BYTES = 4 * 1024 * 1024;

/** At most one warning per this many ms about a failing connection. */
const ERROR_LOG_INTERVAL_MS = 30_000;

export interface AgentRedisOptions {
  logger?: Logger;
  /** False: commands reject while Redis cannot be reached, instead of waiting. Default true. */
  offlineQueue?: boolean;
  /** How long close() waits for replies still due, in ms. Default 2000. */
  closeWaitMs?: number;
}

/** Connects (in the background; commands wait for it) to the Redis at `url`. */
export function agentRedis(
  url: string,
  { logger, offlineQueue = true, closeWaitMs = 2000 }: AgentRedisOptions = {},
): AgentRedis {
  const client = createClient({
    url,
    disableOfflineQueue: !offlineQueue,
    socket: {
      reconnectStrategy: (attempt: number) => Math.min((attempt + 1) * 200, 5000),
      // node-redis stops a turn's write at the socket's high-water mark (16 KiB by default)
      // and sends the rest on 'drain'; a SIGKILL in between would drop the index SADD of
      // agents whose HSET left. 4 MiB keeps a connect burst's turn in one write.
      ...({ writableHighWaterMark: TURN_BYTES } as object),
    },
    // Client-wide: sendCommand ignores a withTypeMapping() proxy's mapping (node-redis 5.12),
    // and decoding agents' protobuf fields as UTF-8 would corrupt them.
    commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
  });
  let loggedAt = Number.NEGATIVE_INFINITY;
  let left = 0;
  // Without a listener an error event would end the process.
  client.on("error", (err: Error) => {
    const now = Date.now();
    if (now - loggedAt < ERROR_LOG_INTERVAL_MS) {
      left++;
      return;
    }
    logger?.warn(
      { err, similarLeftOut: left },
      "Redis connection for agent writes failed; retrying",
    );
    loggedAt = now;
    left = 0;
  });
  const connecting = client.connect().then(
    () => {},
    () => {
      // Only when closed before the first connect: every other failure is retried.
    },
  );
  let closing: Promise<void> | undefined;
  /** How to reject each command sent and not answered yet (close() gives up on them). */
  const unanswered = new Set<(err: Error) => void>();
  let drained: (() => void) | undefined;
  const track = <T>(reply: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      unanswered.add(reject);
      const settle = () => {
        unanswered.delete(reject);
        if (unanswered.size === 0) drained?.();
      };
      reply.then(
        (value) => {
          settle();
          resolve(value);
        },
        (err) => {
          settle();
          reject(err);
        },
      );
    });
  const send = (args: readonly RedisArg[]) => track(client.sendCommand<RedisReply>(args));
  return {
    call: (...args) => send(args),
    async evalScript(script, keys, args) {
      const rest = [String(keys.length), ...keys, ...args];
      try {
        return await send(["EVALSHA", script.sha1, ...rest]);
      } catch (err) {
        if (!String((err as Error)?.message).startsWith("NOSCRIPT")) throw err;
        return send(["EVAL", script.lua, ...rest]);
      }
    },
    ready: () => connecting,
    async transaction(commands) {
      const multi = client.multi();
      for (const c of commands) multi.addCommand(c as RedisArg[]);
      return (await track(multi.exec())) as unknown as RedisReply[];
    },
    close() {
      closing ??= (async () => {
        // The first connect settles before the socket is dropped: node-redis (5.12) leaves a
        // socket open when destroy() comes while it is still connecting.
        const settled = (async () => {
          await connecting;
          if (unanswered.size > 0) await new Promise<void>((resolve) => (drained = resolve));
        })();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          settled,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, closeWaitMs);
          }),
        ]);
        clearTimeout(timer);
        const closed = new Error("the agent Redis connection was closed before Redis answered");
        for (const reject of unanswered) reject(closed);
        unanswered.clear();
        // Ends a connect still retrying, and drops the socket.
        if (client.isOpen) client.destroy();
        await connecting;
      })();
      return closing;
    },
  };
}
