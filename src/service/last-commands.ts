/**
 * The last command sent to each agent, shared by every replica: the Redis hash
 * `<prefix>:last-command` (uid → JSON `{type, by, at, result}`), read by the status writer for
 * the agents' `lastCommand:` block.
 *
 * Written by the replica that was asked (Service.restart), in the same transaction as the
 * command log; read by the status writer once per render slice (one HMGET for its uids).
 * Bounded by the agents the status branch knows: an entry is deleted when the agent's status
 * file is removed (the agent forgotten by the service, or past status retention). Commands to
 * uids no replica ever knew are not recorded.
 */
import type { ChainableCommander, Redis } from "ioredis";

export interface LastCommand {
  type: "restart";
  /** Who asked (the API actor), as given; redacted when rendered. */
  by: string;
  /** ISO 8601 time of the request. */
  at: string;
  /** The outcome for this agent ("sent", "not-capable", ...). */
  result: string;
}

export class LastCommands {
  readonly key: string;
  readonly #redis: Redis;
  /** The entries of the slice loaded last (`load`); replaced at each load. */
  #loaded = new Map<string, LastCommand>();

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.key = `${prefix}:last-command`;
  }

  /** Adds the HSET of these commands to `tx` (the caller's transaction). */
  record(tx: ChainableCommander, commands: ReadonlyMap<string, LastCommand>): ChainableCommander {
    if (commands.size === 0) return tx;
    const fields: string[] = [];
    for (const [uid, c] of commands) fields.push(uid, JSON.stringify(c));
    return tx.hset(this.key, ...fields);
  }

  /** Reads the entries of `uids` (one round trip); `get` answers from them until the next. */
  async load(uids: readonly string[]): Promise<void> {
    const loaded = new Map<string, LastCommand>();
    if (uids.length > 0) {
      const values = await this.#redis.hmget(this.key, ...uids);
      values.forEach((v, i) => {
        const c = v ? parse(v) : undefined;
        if (c) loaded.set(uids[i] as string, c);
      });
    }
    this.#loaded = loaded;
  }

  /** The agent's last command as read by the latest `load`; undefined when none. */
  get(uid: string): LastCommand | undefined {
    return this.#loaded.get(uid);
  }

  /** Deletes the entries of agents whose status files were removed. */
  async forget(uids: readonly string[]): Promise<void> {
    if (uids.length > 0) await this.#redis.hdel(this.key, ...uids);
    for (const uid of uids) this.#loaded.delete(uid);
  }
}

/** An entry as stored; undefined (not shown) when it is not one. */
function parse(text: string): LastCommand | undefined {
  try {
    const c = JSON.parse(text) as Partial<LastCommand> | null;
    if (c?.type !== "restart" || typeof c.by !== "string" || typeof c.at !== "string")
      return undefined;
    return { type: "restart", by: c.by, at: c.at, result: String(c.result ?? "") };
  } catch {
    return undefined;
  }
}
