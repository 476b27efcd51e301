/**
 * One real `opampsupervisor` running a real Collector, for test/interop/collector.test.ts:
 * its config file (the one README's "Connect real Collectors" shows), its own storage folder
 * (instance uid and last remote config persist there across restarts), its own free ports for
 * the Collector's pipelines (passed to the Collector as environment variables the served
 * config references), start with retry, and stop that always ends both processes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";

export interface SupervisorOptions {
  supervisor: string;
  otelcol: string;
  /** serve's OpAMP WebSocket URL, e.g. ws://127.0.0.1:4320/v1/opamp. */
  endpoint: string;
  /** Storage and log folder of this agent. */
  dir: string;
  /** Extra non-identifying attributes (the group selector matches on them). */
  attributes: Record<string, string>;
}

/** The supervisor config this project documents and tests (README "Connect real Collectors"). */
export function supervisorConfig(o: SupervisorOptions, env: Record<string, string>): string {
  const attrs = Object.entries(o.attributes)
    .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
    .join("\n");
  const envs = Object.entries(env)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join("\n");
  return `server:
  endpoint: ${o.endpoint}
capabilities:
  accepts_remote_config: true
  reports_remote_config: true
  reports_effective_config: true
  reports_health: true
  reports_heartbeat: true
  reports_available_components: true
  reports_own_metrics: false
agent:
  executable: ${o.otelcol}
  # The bootstrap runs bind :8888 for the Collector's own metrics otherwise.
  args: ["--set=service::telemetry::metrics::level=none"]
  env:
${envs}
  description:
    non_identifying_attributes:
${attrs}
  # APPLIED is reported once the Collector is still healthy this long after its restart.
  config_apply_timeout: 5s
  bootstrap_timeout: 30s
  orphan_detection_interval: 1s
  validate_config: true
storage:
  directory: ${o.dir}
telemetry:
  logs:
    level: info
    output_paths: [${join(o.dir, "supervisor.log")}]
    error_output_paths: [${join(o.dir, "supervisor.log")}]
`;
}

const CONNECTED = "Connected to the OpAMP server";
const RACE = "Error reading agent stdout";

export class Supervisor {
  readonly o: SupervisorOptions;
  readonly ports: { grpc: number; health: number };
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> | undefined;

  private constructor(o: SupervisorOptions, ports: { grpc: number; health: number }) {
    this.o = o;
    this.ports = ports;
    mkdirSync(o.dir, { recursive: true });
    writeFileSync(
      join(o.dir, "supervisor.yaml"),
      supervisorConfig(o, {
        OTLP_GRPC_PORT: String(ports.grpc),
        HEALTH_PORT: String(ports.health),
      }),
    );
  }

  static async create(o: SupervisorOptions): Promise<Supervisor> {
    return new Supervisor(o, { grpc: await freePort(), health: await freePort() });
  }

  /** The supervisor's own log so far ("" when none). */
  log(): string {
    try {
      return readFileSync(join(this.o.dir, "supervisor.log"), "utf8");
    } catch {
      return "";
    }
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null;
  }

  /** How many times the supervisor logged `text` (its log is appended to, never cut). */
  count(text: string): number {
    return this.log().split(text).length - 1;
  }

  /**
   * Starts the supervisor and waits until it connects to the server. A start that exits or
   * does not connect within `connectMs` is killed and retried, up to `attempts` times: its
   * bootstrap can race on the Collector's feature-gate check ("Error reading agent stdout")
   * and then hang or exit; a start that logged that race gets `raceGraceMs` to connect.
   */
  async start(attempts = 3, connectMs = 45_000, raceGraceMs = 10_000): Promise<void> {
    for (let i = 1; i <= attempts; i++) {
      const connected = this.count(CONNECTED);
      const raced = this.count(RACE);
      // Its own process group: stop() can end the supervisor and its Collector together.
      const child = spawn(this.o.supervisor, ["--config", join(this.o.dir, "supervisor.yaml")], {
        cwd: this.o.dir,
        stdio: "ignore",
        detached: true,
      });
      this.#child = child;
      this.#exited = once(child, "exit");
      let end = Date.now() + connectMs;
      let racing = false;
      while (Date.now() < end && child.exitCode === null && child.signalCode === null) {
        if (this.count(CONNECTED) > connected) return;
        // The supervisor logs RACE on most starts, and still connects when the feature-gate
        // output was read in full. When it was not, the bootstrap runs a `nop` pipeline this
        // Collector does not have and hangs until bootstrap_timeout: give it a short grace.
        if (!racing && this.count(RACE) > raced) {
          racing = true;
          end = Math.min(end, Date.now() + raceGraceMs);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await this.stop(2000);
      if (i === attempts)
        throw new Error(
          `opampsupervisor did not connect in ${attempts} starts; log:\n${this.log()}`,
        );
    }
  }

  /** SIGTERM (the supervisor stops its Collector), SIGKILL to the group after `ms`. */
  async stop(ms = 10_000): Promise<void> {
    const child = this.#child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {}
    }, ms);
    await this.#exited;
    clearTimeout(timer);
    // A Collector left behind by a killed supervisor ends with its group.
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {}
  }
}
