/**
 * Admin commands for agents connected to any replica or worker: `Service.restart` runs the
 * command on the agents this process holds and publishes it on the Redis channel
 * `<prefix>:agent-commands`; every other process (following it, src/redis-subscriber.ts) runs
 * it on the agents it holds, logging who asked, and publishes its outcomes back to the asker.
 *
 * The asker waits for as many replies as `PUBLISH` counted other subscribers, at most
 * `replyTimeoutMs` (default 2000): a process that dies meanwhile costs that wait, and its
 * agents are then reported "not-here". Outcomes are merged per agent: the process that holds
 * the agent answers for it; a uid nobody holds is "not-here".
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RestartOutcome, RestartTarget } from "../api/backend.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";

export interface CommandRelayOptions {
  redis: Redis;
  prefix: string;
  /** This process' id (replies are addressed to it). */
  replicaId: string;
  logger: Logger;
  /** The process' shared pub/sub connection. Default: one of the relay's own. */
  subscriber?: RedisSubscriber;
  /** Sends RESTART to the target's agents connected to this process; "not-here" for others. */
  local: (target: RestartTarget, by: string) => RestartOutcome[];
  /** Longest wait for the other processes' outcomes, ms. Default 2000. */
  replyTimeoutMs?: number;
}

type Message =
  | { kind: "restart"; id: string; from: string; target: RestartTarget; by: string }
  | { kind: "outcomes"; id: string; to: string; outcomes: RestartOutcome[] };

/**
 * Largest message, bytes: the outcomes of a group restart name every agent of the group the
 * process holds (about 100 bytes each), so this allows some 160,000 per process.
 */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

interface Pending {
  expected: number;
  got: RestartOutcome[][];
  done: () => void;
}

export class CommandRelay {
  readonly #o: CommandRelayOptions;
  readonly #pending = new Map<string, Pending>();
  #unfollow: (() => void) | undefined;

  constructor(options: CommandRelayOptions) {
    this.#o = options;
  }

  get #channel(): string {
    return `${this.#o.prefix}:agent-commands`;
  }

  async start(): Promise<void> {
    if (this.#unfollow) return;
    // Failures of a handler are logged by the subscriber ("a Redis message handler failed").
    this.#unfollow = await follow<Message>(this.#o, this.#channel, {
      onMessage: (m) => this.#heard(m),
      decode: (text) => {
        const m = JSON.parse(text) as Message | null;
        if (m?.kind !== "restart" && m?.kind !== "outcomes") throw new TypeError("not a command");
        return m;
      },
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
  }

  /** Stops listening; pending requests return what they have. */
  close(): void {
    this.#unfollow?.();
    this.#unfollow = undefined;
    for (const p of this.#pending.values()) p.done();
  }

  /** RESTART to the target's agents wherever they are connected; one outcome per agent. */
  async restart(target: RestartTarget, by: string): Promise<RestartOutcome[]> {
    const local = this.#o.local(target, by);
    if (!this.#unfollow) return local;
    const id = randomBytes(8).toString("hex");
    const pending: Pending = { expected: Number.POSITIVE_INFINITY, got: [], done: () => {} };
    const finished = new Promise<void>((resolve) => {
      pending.done = resolve;
    });
    this.#pending.set(id, pending);
    const timer = setTimeout(pending.done, this.#o.replyTimeoutMs ?? 2000);
    try {
      const message: Message = { kind: "restart", id, from: this.#o.replicaId, target, by };
      const receivers = await this.#o.redis.publish(this.#channel, JSON.stringify(message));
      // PUBLISH counts this process' own subscriber too.
      pending.expected = receivers - 1;
      if (pending.got.length >= pending.expected) pending.done();
      await finished;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(id);
    }
    return merge(local, pending.got.flat());
  }

  async #heard(m: Message): Promise<void> {
    if (m.kind === "restart" && m.from !== this.#o.replicaId) {
      const outcomes = this.#o.local(m.target, m.by).filter((o) => o.result !== "not-here");
      const reply: Message = { kind: "outcomes", id: m.id, to: m.from, outcomes };
      await this.#o.redis.publish(this.#channel, JSON.stringify(reply));
    } else if (m.kind === "outcomes" && m.to === this.#o.replicaId) {
      const p = this.#pending.get(m.id);
      if (!p) return;
      p.got.push(m.outcomes);
      if (p.got.length >= p.expected) p.done();
    }
  }
}

/** One outcome per agent, by uid: the holder's answer wins over "not-here". */
function merge(local: RestartOutcome[], remote: RestartOutcome[]): RestartOutcome[] {
  const byUid = new Map<string, RestartOutcome>();
  for (const o of [...local, ...remote]) {
    const seen = byUid.get(o.instanceUid);
    if (!seen || seen.result === "not-here") byUid.set(o.instanceUid, o);
  }
  return [...byUid.values()].sort((a, b) => a.instanceUid.localeCompare(b.instanceUid));
}
