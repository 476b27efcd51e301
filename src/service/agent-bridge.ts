/**
 * Feeds what agents report (OpAMP events) into the rollouts: group membership from the
 * agent's attributes, connection, APPLYING/APPLIED/FAILED for a hash, and health.
 * Rollout writes are asynchronous; a failure is logged and the agent's next report retries.
 * Agent error text is redacted (`redact`) before it enters rollout state, which the admin
 * API, the CLI, notices and logs quote.
 *
 * An agent whose build lacks a component type its group's config needs (FleetProvider
 * missingFor) is incompatible: it does not join the group's rollout (so it is never in a
 * cohort, never fails it, never holds a gate) and is listed in IncompatibleAgents instead.
 *
 * Shutdown: `close()` (after the OpAMP server closed, before the rollouts) waits for the
 * writes in flight; an event after it is dropped with a debug line, not a warning per agent
 * (the rollouts may already be closed, and the agents' disconnects are in the agent store).
 */
import type { Logger } from "pino";
import {
  AgentCapabilities,
  type AgentEvents,
  type AgentState,
  allPackagesHash,
  hasFlag,
  healthSummary,
  RemoteConfigStatus,
} from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import { type BundleReport, bundleReport } from "./bundle-report.js";
import type { FleetProvider } from "./fleet-provider.js";
import type { IncompatibleAgents } from "./incompatible-agents.js";

const REPORTED = {
  [RemoteConfigStatus.APPLIED]: "APPLIED",
  [RemoteConfigStatus.APPLYING]: "APPLYING",
  [RemoteConfigStatus.FAILED]: "FAILED",
} as const;

const OWN = {
  metrics: AgentCapabilities.ReportsOwnMetrics,
  traces: AgentCapabilities.ReportsOwnTraces,
  logs: AgentCapabilities.ReportsOwnLogs,
} as const;

export class AgentBridge {
  /** The group each connected agent was placed in (for metrics); read-only outside. */
  readonly groupOf: ReadonlyMap<string, string> = new Map<string, string>();
  /** The same, by group: who a group-wide push goes to, without a scan over every agent. */
  readonly #members = new Map<string, Set<string>>();
  /** Connected agents of this process listed as incompatible: uid → group and what they lack. */
  readonly incompatible = new Map<string, { group: string; missing: string }>();
  readonly #list: IncompatibleAgents | undefined;
  readonly #rollouts: RolloutController;
  readonly #provider: FleetProvider;
  readonly #logger: Logger;
  readonly #pending = new Set<Promise<unknown>>();
  /** Last bundle report passed on per agent ("<bundle id> <status>"), so each goes once. */
  readonly #lastBundleReport = new Map<string, string>();
  /** Hash of the connection settings due to an agent (the OpAMP server's answer). */
  readonly #dueSettingsHash: (agent: Readonly<AgentState>) => string | undefined;
  readonly #redact: (text: string) => string;
  #closed = false;

  constructor(
    events: AgentEvents,
    rollouts: RolloutController,
    provider: FleetProvider,
    logger: Logger,
    redact: (text: string) => string = (text) => text,
    incompatible?: IncompatibleAgents,
    dueSettingsHash: (agent: Readonly<AgentState>) => string | undefined = () => undefined,
  ) {
    this.#redact = redact;
    this.#list = incompatible;
    this.#dueSettingsHash = dueSettingsHash;
    this.#rollouts = rollouts;
    this.#provider = provider;
    this.#logger = logger;
    events.on("connected", ({ agent }) => {
      this.place(agent);
      this.#run(rollouts.connected(agent.instanceUid));
      // What it last reported, again: a process killed right after storing a report may
      // never have passed it on, and the agent repeats nothing that did not change. The
      // rollouts ignore a report or health they already hold.
      this.#lastBundleReport.delete(agent.instanceUid);
      this.#reportOn(agent);
      const health = healthSummary(agent);
      if (health) this.#health(agent.instanceUid, health.healthy, health.lastError);
    });
    events.on("descriptionChanged", ({ agent }) => this.place(agent));
    // Another build (or the full map after a hash) may make it (in)compatible.
    events.on("availableComponentsChanged", ({ agent }) => this.place(agent));
    // Another credential may allow other groups: an agent whose scope no longer allows its
    // group leaves that group's rollout.
    events.on("scopesChanged", ({ agent }) => this.place(agent));
    events.on("disconnected", ({ instanceUid, lost, elsewhere }) => {
      // Membership stays with the rollouts; this map only follows connected agents.
      this.#setGroup(instanceUid, undefined);
      this.incompatible.delete(instanceUid); // it stays listed in Redis, as members stay
      this.#lastBundleReport.delete(instanceUid);
      if (elsewhere) return; // connected through another replica: still a live member
      this.#run(rollouts.disconnected(instanceUid, lost === true));
    });
    events.on("remoteConfigStatusChanged", ({ agent }) => this.#reportOn(agent));
    events.on("packageStatusesChanged", ({ agent }) => this.#reportOn(agent));
    events.on("connectionSettingsStatusChanged", ({ agent }) => this.#reportOn(agent));
    events.on("offered", ({ agent }) => this.#reportOn(agent));
    events.on("healthChanged", ({ instanceUid, healthy, lastError }) =>
      this.#health(instanceUid, healthy, lastError),
    );
  }

  /**
   * Passes on what the agent reports of the bundle it is served. A config-only bundle is
   * judged as before, on the reported config hash (whatever hash it names, so that the
   * rollouts can see an offer rejected); a bundle with telemetry or packages is judged part by
   * part (bundle-report.ts) and reported under its bundle id.
   */
  #reportOn(agent: Readonly<AgentState>): void {
    const bundle = this.#provider.servedBundle(agent);
    if (!bundle || bundle.id === bundle.parts.configHash) {
      if (agent.remoteConfigStatus) this.#report(agent.instanceUid, agent.remoteConfigStatus);
      return;
    }
    const report = this.bundleReportOf(agent);
    if (!report?.status) return;
    // Agent text (an error may quote the headers it was offered): redacted and cut, as on the
    // config-only path, before it enters rollout state.
    const error = report.error ? this.#redact(report.error) : undefined;
    const key = `${bundle.id} ${report.status} ${error ?? ""}`;
    if (this.#lastBundleReport.get(agent.instanceUid) === key) return;
    this.#lastBundleReport.set(agent.instanceUid, key);
    this.#run(this.#rollouts.report(agent.instanceUid, bundle.id, report.status, error));
  }

  /** Judges again what `agent` reported, against the bundle it is served now. */
  reassess(agent: Readonly<AgentState>): void {
    const bundle = this.#provider.servedBundle(agent);
    // Config-only bundles are judged on each report, as they always were.
    if (bundle && bundle.id !== bundle.parts.configHash) this.#reportOn(agent);
  }

  /** True when the agent is served no bundle or a config-only one (no telemetry, no packages). */
  servesConfigOnly(agent: Readonly<AgentState>): boolean {
    const bundle = this.#provider.servedBundle(agent);
    return !bundle || bundle.id === bundle.parts.configHash;
  }

  /** The agent's report on each part of the bundle it is served (for status files and the API). */
  bundleReportOf(agent: Readonly<AgentState>): (BundleReport & { bundleId: string }) | undefined {
    const bundle = this.#provider.servedBundle(agent);
    if (!bundle) return undefined;
    const desired = this.#provider.desired(agent);
    const packages = desired?.packages ?? [];
    const telemetryDue = (["metrics", "traces", "logs"] as const).some(
      (s) => desired?.telemetry?.[s] !== undefined && hasFlag(agent.capabilities, OWN[s]),
    );
    const settingsHash = this.#dueSettingsHash(agent);
    return {
      bundleId: bundle.id,
      ...bundleReport(agent, {
        configHash: bundle.parts.configHash,
        ...(settingsHash ? { settingsHash } : {}),
        telemetryDue,
        packages,
        ...(packages.length > 0 ? { allPackagesHash: allPackagesHash(packages) } : {}),
      }),
    };
  }

  #report(uid: string, status: NonNullable<AgentState["remoteConfigStatus"]>): void {
    const reported = REPORTED[status.status as keyof typeof REPORTED];
    const hash = Buffer.from(status.lastRemoteConfigHash ?? []).toString("hex");
    if (!reported || hash === "") return;
    const error = status.errorMessage ? this.#redact(status.errorMessage) : undefined;
    this.#run(this.#rollouts.report(uid, hash, reported, error));
  }

  #health(uid: string, healthy: boolean, lastError: string): void {
    const error = lastError ? this.#redact(lastError) : undefined;
    this.#run(this.#rollouts.health(uid, healthy, error));
  }

  /**
   * (Re)places an agent in the group its attributes select now: a member of the group's
   * rollout, or listed as incompatible with the group's config.
   */
  place(agent: Readonly<AgentState>): void {
    const uid = agent.instanceUid;
    const group = this.#provider.groupOf(agent);
    const missing = group === undefined ? [] : this.#provider.missingFor(agent, group);
    const previous = this.groupOf.get(uid);
    const was = this.incompatible.get(uid);
    const missingKey = missing.join(" ");
    if (group === previous && (was?.missing ?? "") === missingKey) return;
    if (was && (was.group !== group || missing.length === 0)) {
      this.incompatible.delete(uid);
      if (this.#list) this.#run(this.#list.remove(was.group, uid));
    }
    this.#setGroup(uid, group);
    if (group === undefined) {
      if (previous) this.#run(this.#rollouts.leave(previous, uid));
      return;
    }
    if (missing.length > 0) {
      this.incompatible.set(uid, { group, missing: missingKey });
      if (this.#list) this.#run(this.#list.set(group, uid, missing));
      // Out of the rollout it was in: a stored membership (another process, a restart) too.
      if (previous && previous !== group) this.#run(this.#rollouts.leave(previous, uid));
      this.#run(this.#rollouts.leave(group, uid));
      return;
    }
    this.#run(this.#rollouts.join(group, uid));
  }

  /** The connected agents placed in `group` (a copy: safe to hold while agents come and go). */
  membersOf(group: string): string[] {
    return [...(this.#members.get(group) ?? [])];
  }

  #setGroup(uid: string, group: string | undefined): void {
    const map = this.groupOf as Map<string, string>;
    const previous = map.get(uid);
    if (previous === group) return;
    if (previous !== undefined) {
      const set = this.#members.get(previous);
      set?.delete(uid);
      if (set?.size === 0) this.#members.delete(previous);
    }
    if (group === undefined) {
      map.delete(uid);
      return;
    }
    map.set(uid, group);
    const set = this.#members.get(group) ?? new Set<string>();
    this.#members.set(group, set);
    set.add(uid);
  }

  /** Stops feeding the rollouts; resolves once the writes in flight settled. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
  }

  #run(p: Promise<unknown>): void {
    const tracked = p.catch((err) => {
      if (this.#closed) this.#logger.debug({ err }, "rollout update dropped at shutdown");
      else this.#logger.warn({ err }, "rollout update failed; the next report retries");
    });
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }
}
