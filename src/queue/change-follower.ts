/**
 * Follows the changes other replicas commit: a pub/sub subscription to `<prefix>:rollouts` on
 * its own connection. ioredis resubscribes after a reconnect; `onReconnect` then lets the
 * controller compare versions, since messages published meanwhile are lost.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ChangeMessage } from "./store.js";

export interface ChangeFollowerOptions {
  /** A connection of its own (a subscribed connection can do nothing else). */
  connection: Redis;
  channel: string;
  logger: Logger;
  onChange(msg: ChangeMessage): void;
  onReconnect(): void;
}

export class ChangeFollower {
  readonly #options: ChangeFollowerOptions;
  #ready = false;

  constructor(options: ChangeFollowerOptions) {
    this.#options = options;
    const sub = options.connection;
    sub.on("error", (err) => options.logger.warn({ err }, "rollout subscriber error"));
    sub.on("message", (_channel: string, text: string) => this.#message(text));
    sub.on("ready", () => {
      if (this.#ready) options.onReconnect();
    });
  }

  async start(): Promise<void> {
    await this.#options.connection.subscribe(this.#options.channel);
    this.#ready = true;
  }

  close(): void {
    this.#options.connection.disconnect();
  }

  #message(text: string): void {
    let msg: ChangeMessage;
    try {
      msg = JSON.parse(text) as ChangeMessage;
    } catch (err) {
      this.#options.logger.warn({ err }, "unreadable rollout change message");
      return;
    }
    this.#options.onChange(msg);
  }
}
