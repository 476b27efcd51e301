/**
 * The process' Redis pub/sub: one subscriber connection of its own (a subscribed connection
 * can do nothing else), shared by every channel the process follows.
 *
 * Contract:
 * - After a reconnect every channel is subscribed again, and then each handler's
 *   `onResubscribed` runs: messages published while disconnected are lost, so a handler that
 *   must not miss a change re-reads the truth there.
 * - A message longer than its channel's bound (bytes) is dropped before it is decoded; one the
 *   decoder refuses (default: `JSON.parse`) is dropped too. Drops are counted per channel and
 *   reason (`dropped()`, a metric) and logged at most once per `logIntervalMs` with the counts.
 * - Handlers run in arrival order; one that throws or rejects is logged and does not affect
 *   the others or later messages. Nothing a publisher sends can crash the process.
 * - `close()` is idempotent; handlers get nothing after it.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { LogLimiter } from "./log-limiter.js";

/** Default bound of one message, bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export type DropReason = "oversized" | "malformed";

export interface ChannelHandler<T> {
  /** Called with each decoded message. */
  onMessage(message: T): void | Promise<void>;
  /** Called after the channel was subscribed again following a reconnect. */
  onResubscribed?(): void | Promise<void>;
  /** Turns the text into a message, throwing on one that is not. Default: `JSON.parse`. */
  decode?(text: string): T;
  /** Largest message accepted, bytes. Default: the subscriber's `maxMessageBytes`. */
  maxMessageBytes?: number;
}

export interface RedisSubscriberOptions {
  /** A connection to duplicate (with its URL and options; it stays untouched). */
  redis: Redis;
  logger: Logger;
  /** Default bound of one message, bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Drops are logged at most once per this, ms. Default 60 000. */
  logIntervalMs?: number;
}

export class RedisSubscriber {
  readonly #options: RedisSubscriberOptions;
  readonly #connection: Redis;
  readonly #handlers = new Map<string, Set<ChannelHandler<unknown>>>();
  /** Per channel, its first SUBSCRIBE (later handlers of the channel wait for it too). */
  readonly #subscribed = new Map<string, Promise<unknown>>();
  /** `<channel>\0<reason>` → drops since start. */
  readonly #dropped = new Map<string, number>();
  /** Logs drops at most once per `logIntervalMs`, with the counts per channel and reason. */
  readonly #dropLog: LogLimiter<{ channel: string; reason: DropReason }>;
  #wasReady = false;
  #closed = false;

  constructor(options: RedisSubscriberOptions) {
    this.#options = options;
    // Resubscribed here, not by ioredis, so that `onResubscribed` runs once SUBSCRIBE is in force.
    this.#connection = options.redis.duplicate({ autoResubscribe: false });
    const { logger } = options;
    this.#dropLog = new LogLimiter({
      intervalMs: options.logIntervalMs ?? 60_000,
      write: (entries, omitted) =>
        logger.warn(
          {
            drops: entries.map(({ detail, count }) => ({ ...detail, count })),
            ...(omitted > 0 ? { omitted } : {}),
            maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
          },
          "Redis messages dropped (too large or unreadable)",
        ),
    });
    this.#connection.on("error", (err) => logger.warn({ err }, "Redis subscriber error"));
    this.#connection.on("messageBuffer", (channel: Buffer, message: Buffer) =>
      this.#heard(channel.toString(), message),
    );
    this.#connection.on("ready", () => {
      if (this.#wasReady) void this.#resubscribe();
      this.#wasReady = true;
    });
  }

  /**
   * Follows `channel` with `handler`; resolves once SUBSCRIBE is in force. Returns the
   * unsubscribe function (the channel is left when its last handler goes).
   */
  async subscribe<T>(channel: string, handler: ChannelHandler<T>): Promise<() => void> {
    if (this.#closed) throw new Error("the Redis subscriber is closed");
    const entry = handler as ChannelHandler<unknown>;
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
    }
    set.add(entry);
    let subscribed = this.#subscribed.get(channel);
    if (!subscribed) {
      subscribed = this.#connection.subscribe(channel);
      this.#subscribed.set(channel, subscribed);
    }
    try {
      await subscribed;
    } catch (err) {
      set.delete(entry);
      if (this.#subscribed.get(channel) === subscribed) this.#subscribed.delete(channel);
      throw err;
    }
    return () => {
      if (!set.delete(entry) || set.size > 0 || this.#handlers.get(channel) !== set) return;
      this.#handlers.delete(channel);
      this.#subscribed.delete(channel);
      if (!this.#closed)
        this.#connection.unsubscribe(channel).catch((err) => {
          this.#options.logger.warn({ err, channel }, "cannot leave a Redis channel");
        });
    };
  }

  /** Drops since start, per channel and reason. */
  dropped(): Array<{ channel: string; reason: DropReason; count: number }> {
    return [...this.#dropped].map(([key, count]) => {
      const [channel = "", reason] = key.split("\0");
      return { channel, reason: reason as DropReason, count };
    });
  }

  /** Leaves every channel and closes the connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    this.#subscribed.clear();
    this.#dropLog.close();
    this.#connection.disconnect();
  }

  #heard(channel: string, message: Buffer): void {
    const handlers = this.#handlers.get(channel);
    if (this.#closed || !handlers) return;
    const defaultMax = this.#options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    // The same text is decoded once per distinct decoder (usually one per channel).
    const decoded = new Map<unknown, unknown>();
    for (const handler of [...handlers]) {
      if (message.length > (handler.maxMessageBytes ?? defaultMax)) {
        this.#drop(channel, "oversized");
        continue;
      }
      const decode = handler.decode ?? JSON.parse;
      let value: unknown;
      if (decoded.has(decode)) value = decoded.get(decode);
      else {
        try {
          value = decode(message.toString("utf8"));
        } catch {
          value = MALFORMED;
        }
        decoded.set(decode, value);
      }
      if (value === MALFORMED) this.#drop(channel, "malformed");
      else this.#run(channel, () => handler.onMessage(value), "a Redis message handler failed");
    }
  }

  async #resubscribe(): Promise<void> {
    const channels = [...this.#handlers.keys()];
    if (this.#closed || channels.length === 0) return;
    try {
      await this.#connection.subscribe(...channels);
    } catch (err) {
      // The connection dropped again: the next "ready" tries again.
      this.#options.logger.warn({ err }, "cannot resubscribe to Redis channels; will retry");
      return;
    }
    this.#options.logger.info({ channels }, "resubscribed to Redis channels after a reconnect");
    for (const channel of channels)
      for (const handler of this.#handlers.get(channel) ?? [])
        if (handler.onResubscribed)
          this.#run(channel, () => handler.onResubscribed?.(), "a resubscribe handler failed");
  }

  #run(channel: string, call: () => void | Promise<void>, what: string): void {
    const fail = (err: unknown) => this.#options.logger.warn({ err, channel }, what);
    try {
      const result = call();
      if (result) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  #drop(channel: string, reason: DropReason): void {
    const key = `${channel}\0${reason}`;
    this.#dropped.set(key, (this.#dropped.get(key) ?? 0) + 1);
    this.#dropLog.record(key, { channel, reason });
  }
}

const MALFORMED = Symbol("malformed");

export interface SubscriberSource {
  /** The process' shared subscriber; without it, one of its own is made from `redis`. */
  subscriber?: RedisSubscriber | undefined;
  redis: Redis;
  logger: Logger;
}

/**
 * Follows `channel` on `source.subscriber`, or on a subscriber of its own when none is given
 * (a module used alone, as in tests). The returned function stops following (and closes the
 * subscriber of its own); it is idempotent.
 */
export async function follow<T>(
  source: SubscriberSource,
  channel: string,
  handler: ChannelHandler<T>,
): Promise<() => void> {
  const own = source.subscriber
    ? undefined
    : new RedisSubscriber({ redis: source.redis, logger: source.logger });
  const subscriber = source.subscriber ?? (own as RedisSubscriber);
  let leave: (() => void) | undefined;
  try {
    leave = await subscriber.subscribe(channel, handler);
  } catch (err) {
    own?.close();
    throw err;
  }
  return () => {
    leave?.();
    leave = undefined;
    own?.close();
  };
}
