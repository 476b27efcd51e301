/**
 * A fleet of simulated agents for the quick start, end-to-end tests, benchmarks and users'
 * own load tests. Agents are started a batch at a time so a large fleet does not open every
 * connection in the same instant.
 */
import { SimulatedAgent, type SimulatedAgentOptions } from "./simulated-agent.js";

export interface FleetOptions
  extends Omit<SimulatedAgentOptions, "instanceUid" | "transport" | "url" | "fallbackUrls"> {
  agents: number;
  /** The server's URL. One of `url` and `urls` is required. */
  url?: string;
  /**
   * Several servers of one service (replicas behind a load balancer): agent i starts on
   * `urls[i % n]` and fails over to the others in turn (see SimulatedAgent's fallbackUrls).
   */
  urls?: string[];
  /** "mixed": every other agent uses plain HTTP, the rest WebSocket. Default "websocket". */
  transport?: SimulatedAgentOptions["transport"] | "mixed";
  /** Agents connecting at once. Default 200. */
  batch?: number;
}

export interface FleetSummary {
  agents: number;
  connected: number;
  applying: number;
  /** Agents by the hash of the config they run ("" = their local config). */
  byHash: Record<string, number>;
  applied: number;
  failed: number;
  reconnects: number;
  /** Connected agents by the server URL they use. */
  byUrl: Record<string, number>;
  /** Times the server shed an agent (503 + Retry-After, or UNAVAILABLE) and it came back later. */
  shed: number;
}

export class SimulatedFleet {
  readonly agents: SimulatedAgent[];
  readonly #batch: number;

  constructor({ agents, batch = 200, transport = "websocket", url, urls, ...agent }: FleetOptions) {
    const pool = urls?.length ? urls : url ? [url] : [];
    if (pool.length === 0) throw new Error("SimulatedFleet: give url or urls");
    this.agents = Array.from({ length: agents }, (_, i) => {
      const first = i % pool.length;
      return new SimulatedAgent({
        ...agent,
        url: pool[first] as string,
        fallbackUrls: [...pool.slice(first + 1), ...pool.slice(0, first)],
        transport: transport === "mixed" ? (i % 2 ? "http" : "websocket") : transport,
      });
    });
    this.#batch = batch;
  }

  /** Starts every agent; `onProgress(started)` after each batch. */
  async start(onProgress: (started: number) => void = () => {}): Promise<void> {
    for (let i = 0; i < this.agents.length; i += this.#batch) {
      await Promise.all(this.agents.slice(i, i + this.#batch).map((a) => a.start()));
      onProgress(Math.min(i + this.#batch, this.agents.length));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
  }

  summary(): FleetSummary {
    const s: FleetSummary = {
      agents: this.agents.length,
      connected: 0,
      applying: 0,
      byHash: {},
      applied: 0,
      failed: 0,
      reconnects: 0,
      byUrl: {},
      shed: 0,
    };
    for (const a of this.agents) {
      if (a.status === "connected" || a.status === "applying") {
        s.connected++;
        s.byUrl[a.url] = (s.byUrl[a.url] ?? 0) + 1;
      }
      if (a.status === "applying") s.applying++;
      const key = a.runningHash.slice(0, 12);
      s.byHash[key] = (s.byHash[key] ?? 0) + 1;
      s.applied += a.counts.applied;
      s.failed += a.counts.failed;
      s.reconnects += a.counts.reconnects;
      s.shed += a.counts.shed;
    }
    return s;
  }

  /** Resolves when `predicate(summary)` holds, checking every `everyMs`; rejects after `timeoutMs`. */
  async until(
    predicate: (s: FleetSummary) => boolean,
    timeoutMs = 30_000,
    everyMs = 50,
  ): Promise<FleetSummary> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.summary();
      if (predicate(s)) return s;
      if (Date.now() > deadline)
        throw new Error(
          `simulated fleet: condition not reached in ${timeoutMs} ms: ${JSON.stringify(s)}`,
        );
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
