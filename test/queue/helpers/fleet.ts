/**
 * Controllers on real Redis for tests, and a fleet of simulated agents that behave as the
 * OpAMP side would make them: when the served hash changes, an agent reports APPLYING, then
 * (after `applyMs`) APPLIED and healthy, or fails in a chosen way.
 */
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { RolloutController, type RolloutControllerOptions } from "../../../src/queue/index.js";
import type { RolloutNotice } from "../../../src/queue/model.js";
import { capturedLogger } from "../../helpers/logger.js";
import { waitFor } from "../../helpers/wait.js";
import { policy } from "./machine.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A connection as src/redis.ts makes them (commands wait for a reconnect). */
export function connection(url = REDIS_URL): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  redis.on("error", () => {}); // reconnects; tests that cut Redis expect these
  return redis;
}

export interface TestController {
  controller: RolloutController;
  redis: Redis;
  logger: Logger;
  notices: RolloutNotice[];
  close(): Promise<void>;
}

export async function startController(
  prefix: string,
  options: Partial<RolloutControllerOptions> & { url?: string } = {},
): Promise<TestController> {
  const redis = connection(options.url);
  const { logger } = capturedLogger("warn");
  const controller = new RolloutController({ redis, prefix, logger, ...options });
  const notices: RolloutNotice[] = [];
  controller.events.on("*", (n) => notices.push(n));
  await controller.start();
  return {
    controller,
    redis,
    logger,
    notices,
    async close() {
      await controller.close();
      redis.disconnect();
    },
  };
}

export type Behaviour = "ok" | "fail" | "unhealthy" | "silent" | "reject";

/**
 * Simulated agents of one group, driven by the controller's serve-changed signal. Like a real
 * agent, one applies a single config at a time: an offer of another hash while applying
 * replaces the apply in progress, an offer of the hash being applied is ignored.
 */
export class SimFleet {
  /** Hash each agent runs now. */
  readonly running = new Map<string, string | undefined>();
  readonly behaviour = new Map<string, Behaviour>();
  readonly #applying = new Map<string, { hash: string; timer: NodeJS.Timeout }>();
  #unsubscribe: () => void;

  constructor(
    readonly controller: RolloutController,
    readonly group: string,
    readonly uids: readonly string[],
    readonly applyMs = 5,
  ) {
    for (const uid of uids) this.running.set(uid, undefined);
    this.#unsubscribe = controller.onServeChanged((c) => {
      if (c.group !== group) return;
      for (const uid of c.uids ?? this.uids) if (this.running.has(uid)) this.#offer(uid);
    });
  }

  /** Joins and connects every agent (healthy). */
  async connect(): Promise<void> {
    await Promise.all(
      this.uids.flatMap((uid) => [
        this.controller.connected(uid),
        this.controller.health(uid, true),
        this.controller.join(this.group, uid),
      ]),
    );
    this.refresh();
  }

  /** Looks at every agent's served hash again (as a reconnect would). */
  refresh(): void {
    for (const uid of this.uids) this.#offer(uid);
  }

  stop(): void {
    this.#unsubscribe();
    for (const { timer } of this.#applying.values()) clearTimeout(timer);
    this.#applying.clear();
  }

  #offer(uid: string): void {
    const desired = this.controller.served(this.group, uid)?.hash;
    const current = this.running.get(uid);
    const applying = this.#applying.get(uid);
    if (desired === applying?.hash) return;
    if (applying) {
      clearTimeout(applying.timer);
      this.#applying.delete(uid);
    }
    if (desired === undefined || desired === current) return;
    const c = this.controller;
    const behaviour = this.behaviour.get(uid) ?? "ok";
    const ignore = () => {};
    if (behaviour === "silent") return;
    c.report(uid, desired, "APPLYING").catch(ignore);
    const timer = setTimeout(() => {
      this.#applying.delete(uid);
      if (behaviour === "fail") {
        c.report(uid, desired, "FAILED", "exporter otlp: connection refused").catch(ignore);
      } else if (behaviour === "reject") {
        c.report(uid, current ?? "none", "APPLIED").catch(ignore);
      } else {
        this.running.set(uid, desired);
        c.report(uid, desired, "APPLIED").catch(ignore);
        if (behaviour === "unhealthy") c.health(uid, false, "pipeline stuck").catch(ignore);
      }
    }, this.applyMs);
    this.#applying.set(uid, { hash: desired, timer });
  }
}

export const hashOf = (c: string) => c.repeat(64).slice(0, 64);

/**
 * A fleet `agents` of group `edge` on `t`'s controller, all on the stable hash
 * hashOf("a") (one stage of 100 %), with the notices of getting there cleared.
 */
export async function stableFleet(t: TestController, agents: string[]): Promise<SimFleet> {
  const fleet = new SimFleet(t.controller, "edge", agents);
  await t.controller.applyGroup({
    group: "edge",
    hash: hashOf("a"),
    commit: "aaaaaaa1",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }] }),
  });
  await fleet.connect();
  await waitFor("A stable", () => t.controller.status("edge")?.stable?.hash === hashOf("a"));
  t.notices.length = 0;
  return fleet;
}
