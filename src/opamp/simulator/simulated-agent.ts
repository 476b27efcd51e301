/**
 * A simulated agent that behaves like a Collector under the OpAMP supervisor: it reports its
 * full state, applies a remote config (APPLYING, then APPLIED or FAILED after `applyMs`),
 * reports the effective config and health, heartbeats, honours ReportFullState and offered
 * heartbeat intervals, and reconnects with backoff. A server that sheds it (HTTP 503 with
 * Retry-After, or UNAVAILABLE with RetryInfo) is tried again after the interval it gave. On a failed config it rolls back, as the
 * supervisor does: the previous config runs again and is reported APPLIED.
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { Backoff } from "../../backoff.js";
import {
  AgentCapabilities as Caps,
  RemoteConfigStatus,
  ServerErrorResponseType,
  ServerToAgentFlags,
} from "../capabilities.js";
import { decodeServerToAgent, encodeAgentToServer, toBigInt } from "../codec.js";
import { newInstanceUid, uidToString } from "../instance-uid.js";
import type {
  AgentConfigMap,
  AgentToServer,
  AvailableComponents,
  ComponentDetails,
  Int64,
} from "../messages.js";
import {
  type AgentLink,
  httpLink,
  type LinkOptions,
  openWebSocketLink,
  RetryLaterError,
} from "./agent-link.js";

export interface SimulatedAgentOptions {
  url: string;
  /**
   * Other servers of the same service (a load balancer's pool): a failed connect or a lost
   * connection moves the agent on to the next URL of `[url, ...fallbackUrls]`, in turn.
   */
  fallbackUrls?: string[];
  /**
   * HTTP only: every request goes to the next URL of `[url, ...fallbackUrls]` (a load
   * balancer without sticky sessions). Default false.
   */
  alternate?: boolean;
  transport?: "websocket" | "http";
  token?: string;
  ca?: string | Buffer;
  /** Agent attributes (non-identifying), e.g. {"deployment.environment": "prod"}. */
  attributes?: Record<string, string>;
  /** service.name reported (identifying). Default "otelcol-contrib". */
  serviceName?: string;
  /** A config whose files contain this text fails to apply. */
  failWhen?: string;
  /** Time to apply a config, in ms. Default 200. */
  applyMs?: number;
  /** Heartbeat (HTTP: poll) interval until the server offers one, in seconds. Default 30. */
  heartbeatSeconds?: number;
  instanceUid?: Uint8Array;
  /**
   * The component types of its build, by kind (`{receivers: ["otlp"], exporters: [...]}`).
   * When given, the agent has ReportsAvailableComponents: it reports the hash, and the map
   * when the server asks (ServerToAgent flag ReportAvailableComponents), as the spec says.
   */
  components?: Record<string, string[]>;
}

export type SimulatedAgentStatus = "connecting" | "connected" | "applying" | "stopped";

const CAPABILITIES =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsEffectiveConfig |
  Caps.ReportsHealth |
  Caps.ReportsRemoteConfig |
  Caps.ReportsHeartbeat |
  Caps.AcceptsOpAMPConnectionSettings;

const LOCAL_CONFIG =
  "receivers:\n  otlp:\n    protocols: {grpc: {}}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n";

export class SimulatedAgent {
  readonly instanceUid: Uint8Array;
  status: SimulatedAgentStatus = "connecting";
  /** Hash (hex) of the config running now; "" for the local config it started with. */
  runningHash = "";
  /** Counts for the fleet summary. */
  readonly counts = { applied: 0, failed: 0, reconnects: 0, messages: 0, shed: 0 };
  lastError = "";
  readonly #options: Required<
    Omit<
      SimulatedAgentOptions,
      "token" | "ca" | "failWhen" | "instanceUid" | "fallbackUrls" | "alternate" | "components"
    >
  > &
    SimulatedAgentOptions;
  readonly #urls: string[];
  #at = 0;
  #link: AgentLink | undefined;
  #linkOptions: LinkOptions | undefined;
  #seq = 0n;
  #running: AgentConfigMap = {
    configMap: { "collector.yaml": { body: Buffer.from(LOCAL_CONFIG), contentType: "text/yaml" } },
  };
  #remoteStatus: AgentToServer["remoteConfigStatus"] = null;
  #healthy = true;
  #heartbeat: NodeJS.Timeout | undefined;
  /** The pending reconnect (a backoff wait, or the start after a lost connection). */
  #retry: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  /** Reconnect delays: 0.5 s doubling to 30 s, up to 40 % jittered away (agents spread out). */
  readonly #backoff = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.4 });
  /** The map and hash of `components`; undefined without them. */
  readonly #components: Required<AvailableComponents> | undefined;

  constructor(options: SimulatedAgentOptions) {
    this.#options = {
      transport: "websocket",
      attributes: {},
      serviceName: "otelcol-contrib",
      applyMs: 200,
      heartbeatSeconds: 30,
      ...options,
    };
    this.instanceUid = options.instanceUid ?? newInstanceUid();
    this.#components = options.components && availableComponents(options.components);
    this.#urls = [options.url, ...(options.fallbackUrls ?? [])];
  }

  get uid(): string {
    return uidToString(this.instanceUid);
  }

  /** The server URL this agent uses now (or tries next). */
  get url(): string {
    return this.#urls[this.#at] as string;
  }

  /** Moves on to the next server of the pool (after a failure). */
  #next(): string {
    this.#at = (this.#at + 1) % this.#urls.length;
    return this.url;
  }

  /** Connects and reports the full state; resolves once connected (retrying until then). */
  async start(): Promise<void> {
    const linkOptions: LinkOptions = {
      url: this.url,
      ...(this.#options.token ? { token: this.#options.token } : {}),
      ...(this.#options.ca ? { ca: this.#options.ca } : {}),
      onMessage: (bytes) => void this.#receive(bytes),
      onClose: (reason) => this.#lost(reason),
    };
    while (this.status !== "stopped") {
      linkOptions.url = this.url;
      this.#linkOptions = linkOptions;
      try {
        const link =
          this.#options.transport === "http"
            ? httpLink(linkOptions)
            : await openWebSocketLink(linkOptions);
        // stop() came while the socket opened: it stays stopped (marked connected again, a
        // lost connection would start reconnecting, for ever).
        if (this.#stopped()) {
          link.close();
          return;
        }
        this.#link = link;
        this.status = "connected";
        this.#backoff.reset();
        await this.#send(this.#fullState());
        if (!this.#stopped()) this.#schedule();
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.#next();
        await this.#wait(this.#delayAfter(err));
      }
    }
  }

  /**
   * Says goodbye (agent_disconnect, when connected) and closes. Stopped from its first line:
   * a connect, reconnect or heartbeat under way when it is called ends without reconnecting.
   */
  async stop(): Promise<void> {
    if (this.status === "stopped") return;
    const connected = this.status === "connected" || this.status === "applying";
    this.status = "stopped";
    clearTimeout(this.#heartbeat);
    // A reconnect waiting out its backoff (up to 30 s) ends now, and holds the process no more.
    clearTimeout(this.#retry);
    this.#wake?.();
    if (connected) await this.#send({ agentDisconnect: {} }).catch(() => {});
    this.#link?.close();
  }

  /** Read through a method: TypeScript narrows `status` across an await otherwise. */
  #stopped(): boolean {
    return this.status === "stopped";
  }

  /**
   * Waits `ms` before the next connect attempt; stop() ends the wait early, and after stop()
   * (a connect attempt that failed once it was stopped) there is no wait.
   */
  #wait(ms: number): Promise<void> {
    if (this.status === "stopped") return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#retry = setTimeout(resolve, ms);
    });
  }

  /** The server's Retry-After when it shed us (counted), else the next backoff. */
  #delayAfter(err: unknown): number {
    if (!(err instanceof RetryLaterError)) return this.#nextBackoff();
    this.counts.shed++;
    return err.retryAfterMs;
  }

  #nextBackoff(): number {
    return this.#backoff.next();
  }

  #lost(reason: string, delayMs = this.#nextBackoff()): void {
    if (this.status === "stopped") return;
    clearTimeout(this.#heartbeat);
    this.lastError = reason;
    this.status = "connecting";
    this.counts.reconnects++;
    this.#next();
    this.#retry = setTimeout(() => void this.start(), delayMs);
  }

  #schedule(): void {
    clearTimeout(this.#heartbeat);
    this.#heartbeat = setTimeout(() => {
      void this.#send({}).catch((err) => this.#failed(err));
      this.#schedule();
    }, this.#options.heartbeatSeconds * 1000);
    this.#heartbeat.unref();
  }

  #failed(err: unknown): void {
    this.lastError = (err as Error).message;
    if (this.#options.transport === "http" && this.status !== "stopped")
      this.#lost(this.lastError, this.#delayAfter(err));
  }

  #fullState(): Partial<AgentToServer> {
    return {
      ...(this.#components ? { availableComponents: { hash: this.#components.hash } } : {}),
      agentDescription: {
        identifyingAttributes: [
          { key: "service.name", value: { stringValue: this.#options.serviceName } },
          { key: "service.instance.id", value: { stringValue: this.uid } },
        ],
        nonIdentifyingAttributes: [
          { key: "host.name", value: { stringValue: `${hostname()}-${this.uid.slice(0, 8)}` } },
          ...Object.entries(this.#options.attributes).map(([key, value]) => ({
            key,
            value: { stringValue: value },
          })),
        ],
      },
      health: {
        healthy: this.#healthy,
        status: this.#healthy ? "StatusOK" : "StatusRecoverableError",
        lastError: this.lastError,
      },
      effectiveConfig: { configMap: this.#running },
      remoteConfigStatus: this.#remoteStatus,
    };
  }

  async #send(fields: Partial<AgentToServer>): Promise<void> {
    const bytes = encodeAgentToServer({
      instanceUid: this.instanceUid,
      sequenceNum: this.#seq++,
      capabilities: this.#components
        ? CAPABILITIES | Caps.ReportsAvailableComponents
        : CAPABILITIES,
      ...fields,
    });
    this.counts.messages++;
    if (this.#options.alternate && this.#options.transport === "http" && this.#linkOptions)
      this.#link = httpLink({ ...this.#linkOptions, url: this.#next() });
    await this.#link?.send(bytes);
  }

  async #receive(bytes: Uint8Array): Promise<void> {
    // A reply that arrives after stop() (to its goodbye, or a push on the way): the agent is
    // gone; acting on it would make it "applying", then "connected", and reconnecting again.
    if (this.#stopped()) return;
    const m = decodeServerToAgent(bytes);
    const error = m.errorResponse as {
      type?: number;
      retryInfo?: { retryAfterNanoseconds?: Int64 } | null;
    } | null;
    if (error?.type === ServerErrorResponseType.Unavailable) {
      // Shed (or the server cannot store now): the same report again after the interval.
      this.counts.shed++;
      const nanos = toBigInt(error.retryInfo?.retryAfterNanoseconds);
      const ms = nanos > 0n ? Number(nanos / 1_000_000n) : this.#nextBackoff();
      setTimeout(() => void this.#send(this.#fullState()).catch((e) => this.#failed(e)), ms);
      return;
    }
    const identification = m.agentIdentification as { newInstanceUid?: Uint8Array } | null;
    if (identification?.newInstanceUid?.length === 16)
      (this as { instanceUid: Uint8Array }).instanceUid = identification.newInstanceUid;
    const settings = m.connectionSettings as {
      opamp?: { heartbeatIntervalSeconds?: Int64 };
    } | null;
    const offered = Number(toBigInt(settings?.opamp?.heartbeatIntervalSeconds));
    if (offered > 0) {
      this.#options.heartbeatSeconds = offered;
      this.#schedule();
    }
    if ((m.flags as bigint) & ServerToAgentFlags.ReportFullState)
      await this.#send(this.#fullState()).catch((e) => this.#failed(e));
    if ((m.flags as bigint) & ServerToAgentFlags.ReportAvailableComponents && this.#components)
      await this.#send({ availableComponents: this.#components }).catch((e) => this.#failed(e));
    const remote = m.remoteConfig as { config?: AgentConfigMap; configHash?: Uint8Array } | null;
    if (remote?.configHash?.length)
      await this.#apply(remote.config ?? {}, Buffer.from(remote.configHash).toString("hex"));
  }

  async #apply(config: AgentConfigMap, hash: string): Promise<void> {
    if (hash === this.runningHash || this.status === "applying") return;
    const previous = { config: this.#running, hash: this.runningHash };
    const hashBytes = Buffer.from(hash, "hex");
    this.status = "applying";
    this.#remoteStatus = { lastRemoteConfigHash: hashBytes, status: RemoteConfigStatus.APPLYING };
    await this.#send({ remoteConfigStatus: this.#remoteStatus }).catch((e) => this.#failed(e));
    await new Promise((r) => setTimeout(r, this.#options.applyMs));
    // Stopped while applying: it reports nothing more and stays stopped.
    if (this.#stopped()) return;
    const bodies = Object.values(config.configMap ?? {}).map((f) =>
      Buffer.from(f.body ?? []).toString("utf8"),
    );
    const fail =
      this.#options.failWhen !== undefined &&
      bodies.some((b) => b.includes(this.#options.failWhen as string));
    if (!fail) {
      this.#running = config;
      this.runningHash = hash;
      this.#healthy = true;
      this.counts.applied++;
      this.#remoteStatus = { lastRemoteConfigHash: hashBytes, status: RemoteConfigStatus.APPLIED };
      this.status = "connected";
      await this.#send({
        remoteConfigStatus: this.#remoteStatus,
        effectiveConfig: { configMap: config },
        health: { healthy: true, status: "StatusOK" },
      }).catch((e) => this.#failed(e));
      return;
    }
    this.counts.failed++;
    const error = `collector failed to start with the new config: it contains "${this.#options.failWhen}"`;
    this.#remoteStatus = {
      lastRemoteConfigHash: hashBytes,
      status: RemoteConfigStatus.FAILED,
      errorMessage: error,
    };
    await this.#send({
      remoteConfigStatus: this.#remoteStatus,
      health: { healthy: false, status: "StatusFatalError", lastError: error },
    }).catch((e) => this.#failed(e));
    // The supervisor's own rollback: the previous config runs again.
    this.#running = previous.config;
    this.runningHash = previous.hash;
    this.#healthy = true;
    if (this.#stopped()) return;
    this.status = "connected";
    if (previous.hash) {
      this.#remoteStatus = {
        lastRemoteConfigHash: Buffer.from(previous.hash, "hex"),
        status: RemoteConfigStatus.APPLIED,
      };
    }
    await this.#send({
      remoteConfigStatus: this.#remoteStatus,
      effectiveConfig: { configMap: previous.config },
      health: { healthy: true, status: "StatusOK" },
    }).catch((e) => this.#failed(e));
  }
}

/** The AvailableComponents of a kind → types list; the hash is over the sorted entries. */
function availableComponents(kinds: Record<string, string[]>): Required<AvailableComponents> {
  const components: Record<string, ComponentDetails> = {};
  const digest = createHash("sha256");
  for (const kind of Object.keys(kinds).sort()) {
    const types = [...(kinds[kind] ?? [])].sort();
    components[kind] = { subComponentMap: Object.fromEntries(types.map((t) => [t, {}])) };
    digest.update(`${kind}:${types.join(",")};`);
  }
  return { components, hash: new Uint8Array(digest.digest()) };
}
