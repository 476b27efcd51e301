/**
 * Prometheus metrics of the service (`GET /metrics`). Gauges are read from the modules when
 * scraped; counters are fed by module events. Only this file imports prom-client.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { mallocTrimStats } from "../malloc-trim.js";
import type { Service } from "./service.js";

/** RemoteConfigStatuses enum of the OpAMP spec, by number. */
const AGENT_STATES = ["UNSET", "APPLIED", "APPLYING", "FAILED"];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly validationFailures: Counter;
  readonly gitFetchErrors: Counter;
  readonly statusCommits: Counter;
  readonly statusCommitSeconds: Histogram;

  constructor(service: Service) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: "opamp_gitops_" });
    const handler = service.opamp.handler;
    new Gauge({
      name: "opamp_gitops_agents",
      help: "Agents connected to this replica, by group, remote config state and transport",
      labelNames: ["group", "state", "transport"],
      registers: [r],
      collect() {
        this.reset();
        for (const live of handler.live.values()) {
          const group = service.bridge?.groupOf.get(live.state.instanceUid) ?? "_unassigned";
          const code = live.state.remoteConfigStatus?.status ?? 0;
          const state = AGENT_STATES[code] ?? "UNSET";
          this.inc({ group, state, transport: live.state.transport });
        }
      },
    });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter(
      "opamp_gitops_malloc_trim_total",
      "Calls of glibc malloc_trim giving free C heap pages back to the OS (--malloc-trim-interval)",
      () => mallocTrimStats().runs,
    );
    counter(
      "opamp_gitops_malloc_trim_seconds_total",
      "Time those calls took on libuv's thread pool",
      () => mallocTrimStats().seconds,
    );
    counter(
      "opamp_gitops_opamp_messages_total",
      "AgentToServer messages handled",
      () => handler.stats.messages,
    );
    counter(
      "opamp_gitops_opamp_bad_requests_total",
      "Messages answered BAD_REQUEST",
      () => handler.stats.badRequests,
    );
    counter(
      "opamp_gitops_opamp_quick_heartbeats_total",
      "Of the messages, WebSocket heartbeats answered on the fast path",
      () => handler.stats.quickHeartbeats,
    );
    counter(
      "opamp_gitops_opamp_quiet_heartbeats_total",
      "Of the quick heartbeats, those answered without asking the desired state (its version unchanged)",
      () => handler.stats.quietHeartbeats,
    );
    counter(
      "opamp_gitops_config_pushes_total",
      "Remote configs sent to agents",
      () => handler.stats.configOffers,
    );
    counter(
      "opamp_gitops_duplicate_uids_total",
      "Connects refused: the instance uid is connected through another live replica by another agent",
      () => handler.stats.duplicateUids,
    );
    counter(
      "opamp_gitops_opamp_bound_uid_refusals_total",
      "Messages refused (BAD_REQUEST): a connection whose client certificate was issued to one instance uid spoke for another",
      () => handler.stats.boundElsewhere,
    );
    const writes = () => service.rollouts.writeStats();
    counter(
      "opamp_gitops_rollout_commits_total",
      "Rollout state writes committed by this replica (Redis Lua commits)",
      () => writes().commits,
    );
    counter(
      "opamp_gitops_rollout_member_commits_total",
      "Of those, writes of member records only (no compare-and-set on the whole group)",
      () => writes().memberCommits,
    );
    counter(
      "opamp_gitops_rollout_write_conflicts_total",
      "Rollout writes that lost to another replica's and were stepped again",
      () => writes().conflicts,
    );
    const csr = () => service.agentCredentials.stats;
    counter(
      "opamp_gitops_agent_certificates_signed_total",
      "Agent client certificates signed by this replica (for CSRs and rotations)",
      () => csr().signed,
    );
    counter(
      "opamp_gitops_agent_csr_reused_total",
      "CSRs answered with the agent's current certificate (same key, uid and group)",
      () => csr().reused,
    );
    counter(
      "opamp_gitops_agent_csr_rate_limited_total",
      "CSRs refused by the per-agent limit (--agent-csr-interval)",
      () => csr().rateLimited,
    );
    counter(
      "opamp_gitops_git_checks_total",
      "Reads of the fleet repository by this replica (fetches, for a remote)",
      () => service.sync?.checks ?? 0,
    );
    new Counter({
      name: "opamp_gitops_admin_refused_total",
      help: "Admin port requests and connections refused by its per-client limits (rate: --api-rate-limit; auth_failures: --api-auth-failure-limit; connections: --api-max-connections-per-address)",
      labelNames: ["reason"],
      registers: [r],
      collect() {
        this.reset();
        const refused = service.api.refusals();
        this.inc({ reason: "rate" }, refused.rateLimited);
        this.inc({ reason: "auth_failures" }, refused.authLimited);
        this.inc({ reason: "connections" }, refused.connections);
      },
    });
    new Counter({
      name: "opamp_gitops_pubsub_dropped_total",
      help: "Redis pub/sub messages dropped: larger than the channel's bound (oversized) or unreadable (malformed)",
      labelNames: ["channel", "reason"],
      registers: [r],
      collect() {
        this.reset();
        for (const { channel, reason, count } of service.subscriber.dropped())
          this.inc({ channel, reason }, count);
      },
    });
    new Gauge({
      name: "opamp_gitops_leader",
      help: "1 while this replica holds the lease of a once-only duty (git: polling; status: writer)",
      labelNames: ["duty"],
      registers: [r],
      collect() {
        this.reset();
        if (service.gitDuty) this.set({ duty: "git" }, service.gitDuty.lease.held ? 1 : 0);
        if (service.status) this.set({ duty: "status" }, service.status.isWriter ? 1 : 0);
      },
    });
    new Gauge({
      name: "opamp_gitops_rollouts",
      help: "Groups by the state of their current or last rollout",
      labelNames: ["state"],
      registers: [r],
      collect() {
        this.reset();
        for (const group of service.rollouts.groups()) {
          const state = service.rollouts.status(group)?.rollout?.status ?? "none";
          this.inc({ state });
        }
      },
    });
    this.validationFailures = new Counter({
      name: "opamp_gitops_validation_failures_total",
      help: "Commits refused by validation",
      registers: [r],
    });
    this.gitFetchErrors = new Counter({
      name: "opamp_gitops_git_fetch_errors_total",
      help: "Failed reads of the fleet repository",
      registers: [r],
    });
    this.statusCommits = new Counter({
      name: "opamp_gitops_status_commits_total",
      help: "Commits written to the status branch",
      registers: [r],
    });
    this.statusCommitSeconds = new Histogram({
      name: "opamp_gitops_status_commit_seconds",
      help: "Time to write (and push) one status commit",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    service.sync?.on("stalled", () => this.validationFailures.inc());
    service.sync?.on("fetchFailed", () => this.gitFetchErrors.inc());
    const statusFailures = new Counter({
      name: "opamp_gitops_status_flush_failures_total",
      help: "Status flushes that could not publish (changes stay pending in Redis)",
      registers: [r],
    });
    service.status?.on("flushed", (f) => {
      if (!f.commit) return;
      this.statusCommits.inc();
      this.statusCommitSeconds.observe(f.ms / 1000);
    });
    service.status?.on("flushFailed", () => statusFailures.inc());
  }
}
