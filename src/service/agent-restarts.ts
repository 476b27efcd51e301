/**
 * RESTART commands (ServerToAgentCommand) for the admin API: sent to the agents this process
 * holds (`here`), relayed to the agents of every other replica or worker (CommandRelay), and
 * recorded in Redis: the log (`<prefix>:commands`, the last 200, newest first) and each known
 * agent's last command (`<prefix>:last-command`, last-commands.ts) in one transaction, the
 * agents then marked dirty so the status writer (whichever replica) shows it in their files.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RestartOutcome, RestartTarget } from "../api/backend.js";
import { type AgentState, CommandType, type OpampServer } from "../opamp/index.js";
import type { StatusWriter } from "../status/index.js";
import type { CommandRelay } from "./command-relay.js";
import type { LastCommands } from "./last-commands.js";

/** Commands kept in the log `<prefix>:commands`. */
const LOG_LENGTH = 200;

export interface AgentRestartsOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** Holds this process' agents (`handler`) and the stored ones (`store`). */
  opamp: Pick<OpampServer, "handler" | "store">;
  /** The group an agent is served; undefined: none. */
  groupOf: (agent: Readonly<AgentState>) => string | undefined;
  lastCommands: LastCommands;
  /** The relay to the other processes (it calls `here` on each of them). */
  relay: () => CommandRelay;
  /** The status writer, when there is one (its files show each agent's last command). */
  status: () => StatusWriter | undefined;
}

export class AgentRestarts {
  readonly #o: AgentRestartsOptions;

  constructor(options: AgentRestartsOptions) {
    this.#o = options;
  }

  /** RESTART to the target's agents connected to this process; "not-here" for other uids. */
  here(target: RestartTarget, by: string): RestartOutcome[] {
    const { handler } = this.#o.opamp;
    const uids =
      "uids" in target
        ? target.uids
        : [...handler.live.values()]
            .filter((l) => this.#o.groupOf(l.state) === target.group)
            .map((l) => l.state.instanceUid);
    const out = [];
    for (const uid of [...uids].sort()) {
      const live = handler.live.get(uid);
      const group = live ? (this.#o.groupOf(live.state) ?? null) : null;
      const result = handler.command(uid, CommandType.Restart);
      out.push({ instanceUid: uid, group, result });
      if (result === "not-here") continue;
      this.#o.logger.info({ instanceUid: uid, group, by, result }, "agent restart requested");
    }
    return out;
  }

  /**
   * Sends RESTART to agents connected to any replica or worker: the `uids` given, or every
   * connected agent of `group`. Only agents that accept restart commands get it; each is
   * logged by the process holding its connection with who asked (`by`), and the outcomes are
   * recorded here (see the file's comment).
   */
  async restart(target: RestartTarget, by: string): Promise<RestartOutcome[]> {
    const { logger } = this.#o;
    const out = await this.#o.relay().restart(target, by);
    for (const o of out)
      if (o.result === "not-here")
        logger.info({ instanceUid: o.instanceUid, by }, "agent restart: not connected");
    if (out.length === 0) return out;
    const key = `${this.#o.prefix}:commands`;
    const at = new Date().toISOString();
    // Uids the service does not know are skipped: no status file of theirs would be removed,
    // so nothing would delete their entries. A "not-here" agent may be known (disconnected).
    const known = new Set(
      await Promise.all(
        out.map(async (o) =>
          o.result !== "not-here" || (await this.#o.opamp.store.load(o.instanceUid))
            ? o.instanceUid
            : undefined,
        ),
      ),
    );
    const last = new Map(
      out
        .filter((o) => known.has(o.instanceUid))
        .map((o) => [o.instanceUid, { type: "restart" as const, by, at, result: o.result }]),
    );
    const tx = this.#o.redis
      .multi()
      .lpush(key, ...out.map((o) => JSON.stringify({ at, command: "restart", by, ...o })))
      .ltrim(key, 0, LOG_LENGTH - 1);
    await this.#o.lastCommands.record(tx, last).exec();
    // Recorded on the status branch with the agents' files: marked dirty from any replica,
    // the writer renders them (and their last command) at its next flush.
    if (last.size > 0)
      await this.#o
        .status()
        ?.reconcile([...last.keys()])
        .catch((err: unknown) =>
          logger.warn({ err }, "status: recording the restart request failed"),
        );
    return out;
  }
}
