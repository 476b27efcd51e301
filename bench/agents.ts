/**
 * A forked process that plays up to ~9 000 OpAMP agents over WebSocket, driven by the
 * orchestrator (bench/opamp.ts) through IPC. Built on the project's codec and framing.
 *
 * Each agent: connects, sends its full state (description, capabilities, health and the
 * remote config status it has), resends the full state when asked (ReportFullState), answers
 * a remote config with APPLIED at once, and heartbeats (instance_uid, sequence_num,
 * capabilities) at the idle interval, or back to back during a blast; in a health blast each
 * message also carries a Collector-shaped health report with fresh timestamps.
 */
import { randomBytes } from "node:crypto";
import Long from "long";
import WebSocket from "ws";
import { AgentCapabilities, RemoteConfigStatus } from "../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer, toBigInt } from "../src/opamp/codec.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../src/opamp/framing.js";
import type { AgentToServer, Int64 } from "../src/opamp/messages.js";
import { collectorHealth } from "../src/opamp/simulator/collector-health.js";
import {
  type BlastCommand,
  type ConnectCommand,
  type FromAgents,
  now,
  sleep,
  type ToAgents,
} from "./ipc.js";

/** ServerErrorResponseType.UNAVAILABLE. */
const UNAVAILABLE = 2;

const CAPABILITIES =
  AgentCapabilities.ReportsStatus |
  AgentCapabilities.AcceptsRemoteConfig |
  AgentCapabilities.ReportsEffectiveConfig |
  AgentCapabilities.ReportsHealth |
  AgentCapabilities.ReportsHeartbeat;

const START_NANOS = Long.fromString(`${Date.now()}000000`, true);
/** The Collector-shaped health of every agent, at `nowMs` (only its timestamps move). */
const health = (nowMs: number) =>
  collectorHealth({
    startNanos: BigInt(START_NANOS.toString()),
    nowNanos: BigInt(Math.round(nowMs * 1000)) * 1000n,
  });

function send(message: FromAgents): void {
  process.send?.(message);
}

class Agent {
  uid = new Uint8Array(randomBytes(16));
  ws: WebSocket | undefined;
  seq = 0;
  /** Messages sent and not yet answered (pushes may make this undercount; floored at 0). */
  outstanding = 0;
  received = 0;
  open = false;
  failed = false;
  closed = false;
  /** The remote config status the agent reports: hash it last applied. */
  appliedHash: Uint8Array | undefined;
  appliedHex = "";
  configReceivedAt = 0;
  appliedSentAt = 0;
  /** Resolves the worker waiting in changed(), at the agent's next event. */
  #wake: (() => void) | undefined;

  constructor(
    readonly index: number,
    readonly pool: AgentPool,
  ) {}

  #send(fields: Partial<AgentToServer>): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const bytes = encodeAgentToServer({
      instanceUid: this.uid,
      sequenceNum: BigInt(this.seq++),
      capabilities: CAPABILITIES,
      ...fields,
    });
    ws.send(frameWebSocketMessage(bytes));
    this.outstanding++;
    this.pool.sent++;
  }

  /**
   * Resolves at the agent's next event (a message, a close, an error) or after `ms`. The
   * connect workers wait here rather than poll: a poll every few ms costs the load CPU in
   * proportion to the server's latency, which made a slower server's load dearer per agent.
   */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  fullState(): void {
    this.#send({
      agentDescription: {
        identifyingAttributes: [
          { key: "service.name", value: { stringValue: "otelcol-bench" } },
          {
            key: "service.instance.id",
            value: { stringValue: Buffer.from(this.uid).toString("hex") },
          },
        ],
        nonIdentifyingAttributes: [
          { key: "host.name", value: { stringValue: `bench-host-${this.index}` } },
          { key: "os.type", value: { stringValue: "linux" } },
        ],
      },
      health: health(Date.now()),
      ...(this.appliedHash
        ? {
            remoteConfigStatus: {
              lastRemoteConfigHash: this.appliedHash,
              status: RemoteConfigStatus.APPLIED,
            },
          }
        : {}),
    });
  }

  heartbeat(): void {
    this.#send(this.pool.healthStream ? { health: health(Date.now()) } : {});
  }

  /**
   * Opens the socket and sends the full state. A refused upgrade with 503 + Retry-After (the
   * server shedding a storm) is retried after that delay, until `deadline`.
   */
  async connect(url: string, localAddress: string, deadline: number): Promise<void> {
    for (;;) {
      const retryAfterMs = await this.#connectOnce(url, localAddress, deadline - now());
      if (retryAfterMs === undefined || now() + retryAfterMs >= deadline) return;
      this.pool.shed++;
      await sleep(retryAfterMs);
    }
  }

  #connectOnce(url: string, localAddress: string, timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      this.open = false;
      this.failed = false;
      this.closed = false;
      this.outstanding = 0;
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        localAddress,
        handshakeTimeout: Math.max(1000, timeoutMs),
      });
      this.ws = ws;
      let done = false;
      let retryAfterMs: number | undefined;
      const finish = () => {
        if (!done) {
          done = true;
          resolve(retryAfterMs);
        }
      };
      ws.on("unexpected-response", (_req, res) => {
        const seconds = Number(res.headers["retry-after"]);
        if (res.statusCode === 503 && Number.isFinite(seconds)) retryAfterMs = seconds * 1000;
        else this.pool.error(`upgrade refused: ${res.statusCode}`);
        this.failed = true;
        res.resume();
        ws.terminate();
        finish();
      });
      ws.on("open", () => {
        this.open = true;
        this.fullState();
        finish();
      });
      ws.on("message", (data: Buffer) => {
        this.#onMessage(data);
        this.#wake?.();
      });
      ws.on("error", (err) => {
        this.pool.error(err.message);
        if (!this.open) this.failed = true;
        finish();
        this.#wake?.();
      });
      ws.on("close", () => {
        this.closed = true;
        this.open = false;
        this.pool.closedOne();
        finish();
        this.#wake?.();
      });
    });
  }

  #onMessage(data: Buffer): void {
    const t = now();
    this.received++;
    this.pool.received++;
    if (t >= this.pool.windowStart && t < this.pool.windowEnd) this.pool.repliesInWindow++;
    if (this.outstanding > 0) this.outstanding--;
    const message = decodeServerToAgent(unframeWebSocketMessage(data)) as {
      flags: bigint;
      remoteConfig?: { configHash?: Uint8Array } | null;
      errorResponse?: {
        type?: number;
        errorMessage?: string;
        retryInfo?: { retryAfterNanoseconds?: Int64 } | null;
      } | null;
    };
    if (message.errorResponse?.type === UNAVAILABLE) {
      // Shed: send the full state again after the interval the server asked for.
      // Still waiting for an answer meanwhile (counted outstanding, so not settled).
      this.pool.shed++;
      this.outstanding++;
      // Decoded as a protobufjs Long (or a number), never a bigint: toBigInt reads either.
      const nanos =
        toBigInt(message.errorResponse.retryInfo?.retryAfterNanoseconds) || 1_000_000_000n;
      setTimeout(
        () => {
          this.outstanding--;
          this.fullState();
        },
        Number(nanos / 1_000_000n),
      );
      return;
    }
    if (message.errorResponse)
      this.pool.error(`server error: ${message.errorResponse.errorMessage}`);
    let answered = false;
    const hash = message.remoteConfig?.configHash;
    if (hash && hash.length > 0) {
      // "Apply" at once and report APPLIED with the hash (remote_config_status).
      this.appliedHash = new Uint8Array(hash);
      this.appliedHex = Buffer.from(hash).toString("hex");
      this.configReceivedAt = t;
      if ((message.flags & 1n) === 0n) {
        this.#send({
          remoteConfigStatus: {
            lastRemoteConfigHash: this.appliedHash,
            status: RemoteConfigStatus.APPLIED,
          },
        });
        this.appliedSentAt = now();
        answered = true;
      }
    }
    if ((message.flags & 1n) !== 0n) {
      // ReportFullState: the full state carries the remote config status too.
      this.fullState();
      if (hash && hash.length > 0) this.appliedSentAt = now();
      answered = true;
    }
    if (!answered && this.pool.blasting && t < this.pool.stopAt && this.outstanding === 0) {
      this.heartbeat();
    }
  }
}

class AgentPool {
  agents: Agent[] = [];
  sent = 0;
  received = 0;
  repliesInWindow = 0;
  windowStart = Number.POSITIVE_INFINITY;
  windowEnd = Number.POSITIVE_INFINITY;
  stopAt = 0;
  blasting = false;
  /** The current blast sends health reports (BlastCommand.health). */
  healthStream = false;
  closed = 0;
  /** Refused upgrades (503) and UNAVAILABLE replies, each followed by a retry. */
  shed = 0;
  readonly errors = new Map<string, number>();
  #idleTimer: NodeJS.Timeout | undefined;
  #idleCursor = 0;

  error(message: string): void {
    if (this.errors.size < 20) this.errors.set(message, (this.errors.get(message) ?? 0) + 1);
    else if (this.errors.has(message))
      this.errors.set(message, (this.errors.get(message) ?? 0) + 1);
  }

  closedOne(): void {
    this.closed++;
  }

  errorList(): string[] {
    return [...this.errors].slice(0, 5).map(([m, n]) => `${n}× ${m}`);
  }

  async connect(cmd: ConnectCommand): Promise<void> {
    const started = now();
    const deadline = started + cmd.timeoutMs;
    // A reconnect storm: the same agents (uids, applied config) come back on new sockets.
    const previous = cmd.reconnect ? this.agents : [];
    for (const a of previous) a.ws?.terminate();
    this.agents = [];
    this.errors.clear();
    this.shed = 0;
    for (let i = 0; i < cmd.count; i++) {
      const agent = new Agent(cmd.firstIndex + i, this);
      const before = previous[i];
      if (before) {
        agent.uid = before.uid;
        agent.seq = before.seq;
        agent.appliedHash = before.appliedHash;
        agent.appliedHex = before.appliedHex;
      }
      this.agents.push(agent);
    }
    // Bounded concurrency: `concurrency` agents between handshake start and settled.
    let next = 0;
    const settledOf = (a: Agent) =>
      a.open &&
      a.received > 0 &&
      a.outstanding === 0 &&
      (cmd.expectConfigHash === undefined ||
        (cmd.expectConfigHash === "*"
          ? a.appliedHex !== "" && a.configReceivedAt >= started
          : a.appliedHex === cmd.expectConfigHash));
    const worker = async () => {
      while (next < this.agents.length && now() < deadline) {
        const i = next++;
        const agent = this.agents[i] as Agent;
        const address = cmd.localAddresses[i % cmd.localAddresses.length] as string;
        const url = cmd.urls?.length ? (cmd.urls[i % cmd.urls.length] as string) : cmd.url;
        await agent.connect(url, address, deadline);
        while (agent.open && !settledOf(agent) && now() < deadline)
          await agent.changed(deadline - now());
      }
    };
    await Promise.all(Array.from({ length: cmd.concurrency }, worker));
    // Wait for stragglers to settle (bounded by the deadline).
    while (now() < deadline && this.agents.some((a) => a.open && !settledOf(a))) await sleep(20);
    const opened = this.agents.filter((a) => a.open).length;
    send({
      type: "connected",
      opened,
      settled: this.agents.filter(settledOf).length,
      failed: this.agents.length - opened,
      errors: this.errorList(),
      elapsedMs: now() - started,
      shed: this.shed,
    });
    this.#startIdle(cmd.idleHeartbeatMs);
  }

  /** Idle heartbeats: each agent once per interval, spread over 100 ms ticks. */
  #startIdle(intervalMs: number): void {
    clearInterval(this.#idleTimer);
    if (intervalMs <= 0 || this.agents.length === 0) return;
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((this.agents.length * tickMs) / intervalMs));
    let carry = 0;
    this.#idleTimer = setInterval(() => {
      if (this.blasting) return;
      carry += (this.agents.length * tickMs) / intervalMs;
      let n = Math.min(Math.floor(carry), perTick * 4);
      carry -= n;
      while (n-- > 0) {
        const agent = this.agents[this.#idleCursor++ % this.agents.length] as Agent;
        if (agent.open && agent.outstanding === 0) agent.heartbeat();
      }
    }, tickMs);
  }

  async blast(cmd: BlastCommand): Promise<void> {
    this.windowStart = cmd.startAt;
    this.windowEnd = cmd.endAt;
    this.stopAt = cmd.stopAt;
    this.repliesInWindow = 0;
    this.healthStream = cmd.health === true;
    const sent0 = this.sent;
    const received0 = this.received;
    this.blasting = true;
    let cpuInWindow = 0;
    const cpuWindow = (async () => {
      await sleep(Math.max(0, cmd.startAt - now()));
      const c0 = process.cpuUsage();
      await sleep(Math.max(0, cmd.endAt - now()));
      const c = process.cpuUsage(c0);
      cpuInWindow = c.user + c.system;
    })();
    for (const agent of this.agents) if (agent.open && agent.outstanding === 0) agent.heartbeat();
    await sleep(Math.max(0, cmd.stopAt - now()));
    await cpuWindow;
    this.blasting = false;
    this.healthStream = false;
    // Drain: wait for the replies still in flight (bounded).
    const drainDeadline = now() + 15_000;
    while (now() < drainDeadline && this.agents.some((a) => a.open && a.outstanding > 0)) {
      await sleep(20);
    }
    this.windowStart = this.windowEnd = Number.POSITIVE_INFINITY;
    send({
      type: "blastDone",
      sent: this.sent - sent0,
      received: this.received - received0,
      repliesInWindow: this.repliesInWindow,
      unanswered: this.agents.reduce((n, a) => n + (a.open ? a.outstanding : 0), 0),
      cpuMicrosInWindow: cpuInWindow,
    });
  }

  applyRecords(): void {
    const hash: string[] = [];
    const receivedAt: number[] = [];
    const sentAt: number[] = [];
    for (const a of this.agents) {
      if (!a.appliedHex) continue;
      hash.push(a.appliedHex);
      receivedAt.push(a.configReceivedAt);
      sentAt.push(a.appliedSentAt);
    }
    send({ type: "applyRecords", hash, receivedAt, sentAt });
  }

  async closeAll(timeoutMs: number): Promise<void> {
    clearInterval(this.#idleTimer);
    const open = this.agents.filter((a) => a.ws && !a.closed);
    for (const a of open) a.ws?.close(1000, "benchmark done");
    const deadline = now() + timeoutMs;
    while (now() < deadline && open.some((a) => !a.closed)) await sleep(20);
    let terminated = 0;
    for (const a of open) {
      if (!a.closed) {
        a.ws?.terminate();
        terminated++;
      }
    }
    send({ type: "agentsClosed", closed: open.length - terminated, terminated });
    this.agents = [];
  }
}

const pool = new AgentPool();
let busy: Promise<void> = Promise.resolve();

process.on("message", (msg: ToAgents) => {
  busy = busy.then(async () => {
    switch (msg.type) {
      case "connect":
        await pool.connect(msg);
        break;
      case "blast":
        await pool.blast(msg);
        break;
      case "applyRecords":
        pool.applyRecords();
        break;
      case "cpu": {
        const c = process.cpuUsage();
        send({ type: "cpu", userMicros: c.user, systemMicros: c.system });
        break;
      }
      case "closeAgents":
        await pool.closeAll(msg.timeoutMs);
        break;
      case "exit":
        process.exit(0);
    }
  });
});
process.on("disconnect", () => process.exit(0));
