/**
 * The composition root of `opamp-gitops serve`: builds every module from the settings, wires
 * them into the loop (Git → validation → rollouts → OpAMP → reports back into rollouts and
 * the status branch), and starts and stops them in order. Stop is the reverse: stop accepting
 * agents, stop polling Git, drain rollout writes, flush the status branch, close rollouts;
 * each step is bounded, so a dead Redis cannot hold shutdown.
 */

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { AdminServer } from "../api/admin-server.js";
import type { RestartOutcome, RestartTarget } from "../api/backend.js";
import { useViewRedactor } from "../api/views.js";
import { loadAgentCa } from "../ca/lazy.js";
import { withSafeErrors } from "../logger.js";
import {
  type AgentState,
  downloadGrant,
  newReplicaId,
  OpampServer,
  ReplicaLiveness,
} from "../opamp/index.js";
import { RolloutController } from "../queue/index.js";
import { Marker, Redactor } from "../redact/index.js";
import { pipelinedConnection } from "../redis.js";
import { RedisSubscriber } from "../redis-subscriber.js";
import type { Settings } from "../settings.js";
import type { AgentBundleStatus, StatusWriter } from "../status/index.js";
import { loadRedactionKey } from "../status/redaction-key.js";
import { type FleetDesiredState, FleetSync, type GitAuth } from "../sync/index.js";
import {
  CollectorChecker,
  ValidationCache,
  type ValidationReport,
  validateSnapshot,
} from "../validate/index.js";
import { ServiceBackend } from "./admin-backend.js";
import { AgentBridge } from "./agent-bridge.js";
import { AgentCredentialAuthority } from "./agent-credentials.js";
import { AgentRestarts } from "./agent-restarts.js";
import { AgentSearchIndex } from "./agent-search.js";
import { checkBundles } from "./bundle-check.js";
import { BundleStore } from "./bundle-store.js";
import { bundleView } from "./bundle-view.js";
import { CommandRelay } from "./command-relay.js";
import { ComponentSets } from "./component-sets.js";
import { ConfigStore } from "./config-store.js";
import { ConsoleFeed } from "./console-feed.js";
import { CredentialReloader } from "./credential-reload.js";
import { FleetProvider } from "./fleet-provider.js";
import { GitDuty } from "./git-duty.js";
import { certificateGroups } from "./group-scope.js";
import { IncompatibleAgents } from "./incompatible-agents.js";
import { incompatibleFindings } from "./incompatible-check.js";
import { LastCommands } from "./last-commands.js";
import { ServiceMetrics } from "./metrics.js";
import { PackageStore } from "./package-store.js";
import { createStatusWriter } from "./status-wiring.js";

/** Git credentials from the settings (a token from a file or an environment variable). */
function gitAuth(s: Settings): GitAuth | undefined {
  if (s.gitTokenFile) return { type: "token", token: { file: s.gitTokenFile } };
  if (s.gitTokenEnv) return { type: "token", token: { env: s.gitTokenEnv } };
  return undefined;
}

/** Fetch progress as lines such as "fetching <repo>: Receiving objects 45 % (450/1000)". */
function throttledProgress(repo: string, line: (text: string) => void) {
  let last = 0;
  return (e: { phase: string; loaded: number; total: number }) => {
    const now = Date.now();
    const done = e.total > 0 && e.loaded >= e.total;
    if (now - last < 500 && !done) return;
    last = now;
    const pct =
      e.total > 0
        ? ` ${Math.floor((e.loaded / e.total) * 100)} % (${e.loaded}/${e.total})`
        : ` ${e.loaded}`;
    line(`fetching ${repo}: ${e.phase}${pct}`);
  };
}

/** Longest agent error text kept in rollout state (after redaction). */
const AGENT_ERROR_CHARS = 1024;

/**
 * What an apply deadline moved by an outage keeps at least once the service is back (ms):
 * an agent answered UNAVAILABLE while Redis was down retries after 30 s (the OpAMP server's
 * retry delay), and a WebSocket agent cut by a restart reconnects with a backoff.
 */
const OUTAGE_GRACE_MS = 60_000;

export interface ServiceParts {
  settings: Settings;
  redis: Redis;
  logger: Logger;
  /** Plain progress lines for a terminal (clone progress), at most two a second. */
  progress?: (line: string) => void;
}

export class Service {
  /** This process among the replicas (host:pid:random); in logs and status commit trailers. */
  readonly replicaId: string;
  readonly opamp: OpampServer;
  /** This process' liveness key and the sweep of agents of dead processes. */
  readonly liveness: ReplicaLiveness;
  readonly rollouts: RolloutController;
  readonly sync: FleetSync | undefined;
  /** Git polling done by one replica (a lease), the others told of new heads. */
  readonly gitDuty: GitDuty | undefined;
  readonly configs: ConfigStore;
  /** Bundles (telemetry, packages) by id, for every bundle a rollout may serve. */
  readonly bundles: BundleStore;
  /** `--package-dir`; undefined without it. */
  readonly packages: PackageStore | undefined;
  readonly #downloads: { grantKey?: Buffer } = {};
  /** Last command per agent uid, in Redis for every replica (the status files' lastCommand). */
  readonly #lastCommands: LastCommands;
  /** Agents left out of their group's rollout for lacking a component type (any replica). */
  readonly incompatible: IncompatibleAgents;
  readonly bridge: AgentBridge | undefined;
  readonly provider: FleetProvider | undefined;
  readonly api: AdminServer;
  /** Prometheus metrics (`GET /metrics`). */
  readonly metrics: ServiceMetrics;
  /** What the admin port reads and does (src/api's AdminBackend). */
  readonly backend: ServiceBackend;
  /** Change batches for the console's server-sent events, from every replica. */
  readonly feed: ConsoleFeed;
  /** The status branch writer; undefined without a repository. */
  readonly status: StatusWriter | undefined;
  /** Re-reads tokens files and the client CA on change and on reloadCredentials(). */
  readonly credentials: CredentialReloader;
  /** Agents' certificates (CSR), per-agent tokens, rotation and revocation. */
  readonly agentCredentials: AgentCredentialAuthority;
  /** Admin commands (restart) for agents connected to any replica or worker. */
  readonly commands: CommandRelay;
  /** RESTART commands: sent, relayed and recorded. */
  readonly #restarts: AgentRestarts;
  /** The agent search index (uid → searchable text) of the API and console. */
  readonly search: AgentSearchIndex;
  /** The component sets agents report, stored per set (GET /api/v1/components). */
  readonly componentSets: ComponentSets;
  #unwatchSearch: (() => void) | undefined;
  #unwatchComponentSets: (() => void) | undefined;
  #componentSetsBuilt: Promise<unknown> | undefined;
  /** The process' Redis pub/sub connection, shared by every channel it follows. */
  readonly subscriber: RedisSubscriber;
  readonly #p: ServiceParts;
  /** The agent store's and replica liveness' own connection, one write per turn (src/redis.ts). */
  readonly #agentRedis: Redis;
  /** Agent text on its way to the API, the rollouts and the logs; keyed at start(). */
  #redactor = new Redactor(Marker.random());
  #closing: Promise<void> | undefined;
  #applying: Promise<void> = Promise.resolve();

  constructor(parts: ServiceParts) {
    // Errors logged by any module may carry agent data (see safeError).
    const logger = withSafeErrors(parts.logger);
    this.#p = { ...parts, logger };
    const { settings: s, redis } = parts;
    this.configs = new ConfigStore(redis, s.redisPrefix);
    this.bundles = new BundleStore(redis, s.redisPrefix);
    this.packages = s.packageDir ? new PackageStore(s.packageDir) : undefined;
    // Served package files are offered only with an advertised URL to download them from.
    const servable = s.advertise ? this.packages : undefined;
    this.incompatible = new IncompatibleAgents(redis, s.redisPrefix);
    // One pub/sub connection for every channel this process follows.
    const subscriber = new RedisSubscriber({
      redis,
      logger: logger.child({ module: "pubsub" }),
    });
    this.subscriber = subscriber;
    this.rollouts = new RolloutController({
      redis,
      subscriber,
      prefix: s.redisPrefix,
      logger: logger.child({ module: "queue" }),
      // Timers are BullMQ jobs: each runs on one replica; one whose replica died is run again
      // by another within about twice the lease (lock expiry, then the stalled check).
      stalledIntervalMs: Math.max(1000, s.leaderLeaseMs),
      lockDurationMs: Math.max(1000, s.leaderLeaseMs),
      // A Redis outage while replicas run is found by the first process back (liveness).
      outages: () => this.liveness.lastOutage(),
      outageGraceMs: OUTAGE_GRACE_MS,
    });
    const auth = gitAuth(s);
    if (s.repo) {
      const duty = new GitDuty({
        redis,
        subscriber,
        prefix: s.redisPrefix,
        ttlMs: s.leaderLeaseMs,
        maxShareBytes: s.gitShareMaxBytes,
        logger: logger.child({ module: "git-duty" }),
        // The upgrade gap: agents left "connected" by a process that had no liveness key.
        onHolder: () =>
          void this.liveness
            .sweepOrphans()
            .catch((err) => logger.warn({ err }, "sweep of stale connected agents failed")),
      });
      this.gitDuty = duty;
      const cache = new ValidationCache();
      // --otelcol: the operator's Collector binaries check each commit before rollout too.
      const collector = s.otelcol.size > 0 ? new CollectorChecker(s.otelcol) : undefined;
      this.sync = new FleetSync({
        repo: s.repo,
        branch: s.branch,
        ...(s.path ? { path: s.path } : {}),
        stateDir: join(s.stateDir, "git"),
        pollIntervalMs: s.pollIntervalMs,
        pollWhen: duty.polling,
        exchange: duty,
        env: process.env,
        ...(auth ? { auth } : {}),
        ...(parts.progress ? { onProgress: throttledProgress(s.repo, parts.progress) } : {}),
        validate: async (snapshot) => {
          await this.packages?.index();
          const report = await validateSnapshot(snapshot, {
            cache,
            secretRefs: s.secretRefs,
            ...(collector ? { collector } : {}),
          });
          return checkBundles(
            await this.#checkAgents(report),
            snapshot,
            { env: process.env, policy: s.secretRefs },
            servable,
          );
        },
        onListenerError: (err, event) => logger.error({ err, event }, "sync listener failed"),
      });
    }
    const provider = this.sync
      ? new FleetProvider(this.sync, this.rollouts, this.configs, {
          bundles: this.bundles,
          refs: { env: process.env, policy: s.secretRefs },
          packageUrl: (sha256) => this.#packageUrl(sha256),
          onResolveError: (bundle, err) =>
            logger.error(
              { err, bundle },
              "a secret reference no longer resolves; telemetry not offered",
            ),
        })
      : undefined;
    const replicaId = newReplicaId();
    this.replicaId = replicaId;
    // Per-agent writes leave a turn at a time on a connection of their own; BullMQ and the
    // rest keep `redis` (its commands are not held for a turn).
    this.#agentRedis = pipelinedConnection(redis, logger.child({ module: "agent-redis" }));
    const agentCa = s.agentCredentials.ca;
    this.agentCredentials = new AgentCredentialAuthority({
      redis,
      subscriber,
      prefix: s.redisPrefix,
      logger: logger.child({ module: "agent-credentials" }),
      groupOf: (agent) => provider?.groupOf(agent),
      ...s.agentCredentials,
      ca: undefined,
      onRevoked: (uids) => {
        const closed = this.opamp.revoked(uids);
        // Offline agents' files too: no event of theirs would render them again.
        if (this.status?.isWriter)
          this.status
            .reconcile([...uids])
            .catch((err) => logger.warn({ err }, "status: revoked agents not re-rendered"));
        logger.info({ uids: uids.slice(0, 20), closed }, "connections of revoked agents closed");
      },
    });
    const mapScope = s.opampClientGroups ? certificateGroups(s.opampClientGroups) : undefined;
    const authority = this.agentCredentials;
    // The agent CA's certificates are trusted beside --tls-client-ca's; without that file,
    // client certificates are optional (agents bootstrap with a token, then use their own).
    const tls =
      s.tls && agentCa
        ? {
            ...s.tls,
            clientCa: Buffer.concat([
              s.tls.clientCa ?? Buffer.alloc(0),
              Buffer.from("\n"),
              agentCa.cert,
            ]),
            ...(s.tls.clientCa ? {} : { clientCertOptional: true }),
          }
        : s.tls;
    this.opamp = new OpampServer({
      redis: this.#agentRedis,
      replicaId,
      logger: logger.child({ module: "opamp" }),
      host: s.opampHost,
      port: s.opampPort,
      prefix: s.redisPrefix,
      tokens: s.opampTokens,
      maxMessageBytes: s.maxMessageBytes,
      maxConnections: s.maxConnections,
      limits: s.agentLimits,
      ...s.opampGuards,
      shedding: s.shedding,
      ...(tls ? { tls } : {}),
      ...(s.advertise ? { advertise: s.advertise } : {}),
      ...(agentCa
        ? {
            certificateScope: (names, cert) =>
              authority.certificateScope(names, cert) ?? mapScope?.(names),
          }
        : mapScope
          ? { certificateScope: mapScope }
          : {}),
      ...(agentCa || s.agentCredentials.mintTokens ? { issuer: authority } : {}),
      gate: authority,
      ...(provider ? { desired: provider } : {}),
      ...(this.packages
        ? {
            downloads: Object.assign(this.#downloads, {
              locate: (sha256: string) => this.packages?.locate(sha256),
            }),
          }
        : {}),
    });
    this.#lastCommands = new LastCommands(redis, s.redisPrefix);
    this.#restarts = new AgentRestarts({
      redis,
      prefix: s.redisPrefix,
      logger,
      opamp: this.opamp,
      groupOf: (agent) => this.provider?.groupOf(agent),
      lastCommands: this.#lastCommands,
      relay: () => this.commands,
      status: () => this.status,
    });
    this.commands = new CommandRelay({
      redis,
      subscriber,
      prefix: s.redisPrefix,
      replicaId,
      logger: logger.child({ module: "agent-commands" }),
      local: (target, by) => this.#restarts.here(target, by),
    });
    this.liveness = new ReplicaLiveness({
      redis: this.#agentRedis,
      prefix: s.redisPrefix,
      replicaId,
      events: this.opamp.events,
      store: this.opamp.store,
      live: this.opamp.handler.live,
      logger: logger.child({ module: "liveness" }),
      timeoutMs: s.replicaTimeoutMs,
    });
    this.provider = provider;
    this.bridge = provider
      ? new AgentBridge(
          this.opamp.events,
          this.rollouts,
          provider,
          logger,
          (text) => this.#redactor.text(text, AGENT_ERROR_CHARS),
          this.incompatible,
          (agent) => this.opamp.handler.dueSettingsHash(agent),
        )
      : undefined;
    this.status =
      this.sync && provider && this.bridge
        ? createStatusWriter({
            settings: s,
            redis,
            logger: logger.child({ module: "status" }),
            sync: this.sync,
            opamp: this.opamp,
            rollouts: this.rollouts,
            provider,
            configs: this.configs,
            bundleOf: (agent) => this.bundleOf(agent),
            lastCommands: this.#lastCommands,
            configHashOf: (id) => this.bundles.get(id).configHash,
            incompatible: this.incompatible,
            revocation: (uid) => this.agentCredentials.revocation(uid),
            replicaId,
            ...(auth ? { auth } : {}),
          })
        : undefined;
    // Only the agents concerned: a scan over every live agent per change made connecting N
    // agents O(N²) (each join pushes to its own uids).
    this.rollouts.onServeChanged(({ group, uids }) => {
      const targets = uids ?? this.bridge?.membersOf(group) ?? [];
      // Then what agents already report may meet the bundle they are now served (a bundle
      // whose config they already run): passed on without waiting for their next report.
      void this.opamp.refresh(targets).then(() => {
        for (const uid of targets) {
          const live = this.opamp.handler.live.get(uid);
          if (live) this.bridge?.reassess(live.state);
        }
      });
    });
    this.feed = new ConsoleFeed({
      redis,
      subscriber,
      prefix: s.redisPrefix,
      replicaId,
      events: this.opamp.events,
      rollouts: this.rollouts,
      logger: logger.child({ module: "console" }),
    });
    this.metrics = new ServiceMetrics(this);
    this.search = new AgentSearchIndex(redis, s.redisPrefix, logger.child({ module: "search" }));
    this.componentSets = new ComponentSets({
      redis,
      prefix: s.redisPrefix,
      logger: logger.child({ module: "component-sets" }),
    });
    this.backend = new ServiceBackend({
      redis,
      prefix: s.redisPrefix,
      search: this.search,
      componentSets: this.componentSets,
      opamp: this.opamp,
      rollouts: this.rollouts,
      configs: this.configs,
      sync: this.sync,
      ...(this.gitDuty ? { pokeGit: () => this.gitDuty?.poke() } : {}),
      provider,
      status: this.status,
      feed: this.feed,
      metrics: () => this.metrics,
      incompatible: this.incompatible,
      credentials: this.agentCredentials,
      bundleOf: (agent) => this.bundleOf(agent),
      configHashOf: (id) => this.bundles.get(id).configHash,
      restart: (target, by) => this.restart(target, by),
    });
    this.api = new AdminServer({
      backend: this.backend,
      logger: logger.child({ module: "api" }),
      host: s.apiHost,
      port: s.apiPort,
      tokens: s.apiTokens,
      branch: s.branch,
      allowedHosts: s.apiAllowedHosts,
      limits: {
        requestsPerMinute: s.apiLimits.requestsPerMinute,
        authFailuresPerMinute: s.apiLimits.authFailuresPerMinute,
      },
      maxConnectionsPerAddress: s.apiLimits.maxConnectionsPerAddress,
      ...(s.webhookSecret ? { webhookSecret: s.webhookSecret } : {}),
    });
    this.credentials = new CredentialReloader(
      {
        ...(s.opampTokensFile ? { opampTokensFile: s.opampTokensFile } : {}),
        ...(s.apiTokensFile ? { apiTokensFile: s.apiTokensFile } : {}),
        ...(s.tlsClientCaFile ? { tlsClientCaFile: s.tlsClientCaFile } : {}),
      },
      {
        setAgentTokens: (tokens) => this.opamp.setTokens(tokens),
        setAdminTokens: (tokens) => this.api.setTokens(tokens),
        setClientCa: (ca) =>
          this.opamp.setClientCa(
            agentCa ? Buffer.concat([ca, Buffer.from("\n"), agentCa.cert]) : ca,
          ),
      },
      logger.child({ module: "credentials" }),
    );
    // One apply at a time, in commit order: an older commit's apply must never run last.
    this.sync?.on("updated", ({ state }) => {
      this.#applying = this.#applying.then(() => this.#apply(state));
    });
    this.sync?.on("updated", ({ state }) =>
      this.agentCredentials.setGitRevoked(state.revoked ?? [], state.commit),
    );
    this.sync?.on("stalled", ({ commit, errors, findings }) => {
      this.feed.syncChanged();
      logger.error(
        { commit, errors, findings: findings.slice(0, 20) },
        "commit is invalid and is not served",
      );
    });
    this.sync?.on("fetchFailed", ({ error, attempt, retryInMs }) =>
      logger.warn({ error, attempt, retryInMs }, "cannot read the fleet repository; retrying"),
    );
  }

  /** A valid commit: store configs, start or update each group's rollout, re-place agents. */
  async #apply(state: FleetDesiredState): Promise<void> {
    if (this.#closing) return;
    const { logger } = this.#p;
    try {
      this.provider?.forgetResolved();
      for (const group of state.groups.values()) {
        await this.configs.put(group.configHash, group.files);
        await this.bundles.put(group.bundleId, group);
      }
      // Agents that cannot run their group's new config leave its rollout before it starts,
      // so no cohort is drawn from them.
      for (const live of this.opamp.handler.live.values()) this.bridge?.place(live.state);
      for (const group of state.groups.values()) {
        await this.rollouts.applyGroup({
          group: group.name,
          hash: group.bundleId,
          commit: group.hashCommit,
          policy: group.rollout,
        });
      }
      // Every rollout group Git no longer has, also one removed while the service was down.
      for (const name of this.rollouts.groups()) {
        if (state.groups.has(name)) continue;
        await this.rollouts.removeGroup(name, "git: group removed");
        await this.incompatible.removeGroup(name);
      }
      const keep = this.#referencedHashes(state);
      await this.bundles.prune(keep);
      for (const id of keep) keep.add(this.bundles.get(id).configHash);
      await this.configs.prune(keep);
      for (const live of this.opamp.handler.live.values()) this.bridge?.place(live.state);
      await this.opamp.refresh();
      this.feed.syncChanged();
      logger.info({ commit: state.commit, groups: state.groups.size }, "desired state applied");
    } catch (err) {
      logger.error(
        { err, commit: state.commit },
        "could not apply the desired state; will retry on the next commit",
      );
    }
  }

  /** The URL agents download a served package file from (with its grant), or undefined. */
  #packageUrl(sha256: string): string | undefined {
    const advertised = this.#p.settings.advertise?.url;
    const key = this.#downloads.grantKey;
    if (!this.packages || !advertised || !key) return undefined;
    const url = new URL(advertised);
    url.protocol = url.protocol === "wss:" || url.protocol === "https:" ? "https:" : "http:";
    url.pathname = `/packages/${sha256}`;
    url.search = `?grant=${downloadGrant(key, sha256)}`;
    return url.toString();
  }

  /**
   * The all-incompatible check (incompatible-check.ts) over a report without errors: adds an
   * AGENTS_INCOMPATIBLE error for each changed group whose every agent lacks a needed type.
   */
  async #checkAgents(report: ValidationReport): Promise<ValidationReport> {
    if (!report.fleet || report.errors > 0) return report;
    const extra = await incompatibleFindings(report.fleet, this.sync?.current, {
      agentsOf: async (group) => [
        ...new Set([...this.rollouts.members(group), ...(await this.incompatible.uids(group))]),
      ],
      components: (uids) => this.opamp.store.availableComponents(uids),
    });
    if (extra.length === 0) return report;
    const { fleet: _dropped, ...rest } = report;
    return {
      ...rest,
      findings: [...report.findings, ...extra],
      errors: report.errors + extra.length,
    };
  }

  /** Bundle ids (and config hashes) that may still be served: Git's, and each rollout's stable, source and target. */
  #referencedHashes(state: FleetDesiredState): Set<string> {
    const keep = new Set<string>();
    for (const g of state.groups.values()) keep.add(g.configHash).add(g.bundleId);
    for (const name of this.rollouts.groups()) {
      const st = this.rollouts.status(name);
      for (const ref of [st?.stable, st?.rollout?.from, st?.rollout?.target])
        if (ref) keep.add(ref.hash);
    }
    return keep;
  }

  /** The agent's bundle beyond its config, for the API and the status branch. */
  bundleOf(agent: Readonly<AgentState>): AgentBundleStatus | undefined {
    return bundleView(agent, this.bridge, (text) => this.#redactor.text(text, AGENT_ERROR_CHARS));
  }

  /**
   * Sends RESTART (ServerToAgentCommand) to agents connected to any replica or worker: the
   * `uids` given, or every connected agent of `group`; see agent-restarts.ts.
   */
  restart(target: RestartTarget, by: string): Promise<RestartOutcome[]> {
    return this.#restarts.restart(target, by);
  }

  /**
   * Starts every module. Throws the SyncError when the first read of the repository shows it
   * can never work as given (not a repository, bad URL, credentials refused): waiting would not
   * help. A remote that cannot be reached yet is retried with backoff instead.
   */
  async start(): Promise<{ opampPort: number; apiPort: number }> {
    await this.configs.load();
    await this.bundles.load();
    if (this.packages) {
      // One key per fleet (every replica signs alike), made once; never leaves Redis.
      const key = `${this.#p.settings.redisPrefix}:download-key`;
      await this.#p.redis.set(key, randomBytes(32).toString("hex"), "NX");
      this.#downloads.grantKey = Buffer.from((await this.#p.redis.get(key)) ?? "", "hex");
      await this.packages.index();
    }
    // Its first ticks ask liveness for the service's last outage (the one this start ends, if
    // every process was gone): a deadline that fell due then is moved, not failed.
    await this.rollouts.start();
    if (this.sync) {
      // The lease first: only its holder reads a remote; the others take what it shares.
      await this.gitDuty?.start(this.sync);
      const outcome = await this.sync.start();
      this.#p.logger.info({ outcome }, "first read of the fleet repository");
      if (outcome.result === "failed" && !outcome.error.retryable) throw outcome.error;
    }
    // Markers in the status branch are keyed: every replica must use the fleet's one key,
    // and the API and the rollouts show agent text with the same markers.
    const redactionKey = await loadRedactionKey(this.#p.redis, this.#p.settings.redisPrefix);
    this.#redactor = new Redactor(new Marker(redactionKey));
    useViewRedactor(this.#redactor);
    await this.status?.loadRedactionKey();
    this.status?.start();
    const ca = this.#p.settings.agentCredentials.ca;
    if (ca) this.agentCredentials.useCa(await loadAgentCa(ca.cert, ca.key));
    await this.agentCredentials.start();
    if (this.sync?.current)
      this.agentCredentials.setGitRevoked(
        this.sync.current.revoked ?? [],
        this.sync.current.commit,
      );
    // Registered before agents can connect: their owner names a process with a live key.
    await this.liveness.start();
    // After the view redactor is keyed: the index holds attribute values as views show them.
    this.#unwatchSearch = this.search.watch(this.opamp.events, redactionKey);
    this.#unwatchComponentSets = this.componentSets.watch(this.opamp.events);
    // In the background: a walk over the fleet once per Redis (agents stored before the sets
    // were kept per hash), by one process at a time, retried until done; later starts find
    // the mark and read nothing. run() never rejects.
    this.#componentSetsBuilt = this.componentSets.run();
    await this.feed.start();
    const { port } = await this.opamp.start();
    const api = await this.api.start();
    this.credentials.start();
    await this.commands.start();
    return { opampPort: port, apiPort: api.port };
  }

  /**
   * Redacts agent-written text (src/redact, the status branch's detector and markers) before
   * the service shows it (admin API), stores it in rollout state or logs it.
   */
  get redactor(): Redactor {
    return this.#redactor;
  }

  /** Stops everything in reverse order. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.credentials.close();
      this.agentCredentials.close();
      this.commands.close();
      // Budget above the server's 5 s grace: sockets it ends late still reach the rollouts.
      await this.#step("OpAMP server", () => this.opamp.close(), 6000);
      await this.#step("agent reports", async () => this.bridge?.close());
      await this.#step("replica liveness", () => this.liveness.close());
      await this.#step("admin API", () => this.api.close());
      this.feed.close();
      this.#unwatchSearch?.();
      this.#unwatchComponentSets?.();
      await this.#step("component sets", async () => {
        await this.componentSets.close();
        await this.#componentSetsBuilt;
      });
      // Released first: another replica polls at once instead of after the lease expired.
      await this.#step("Git lease", async () => this.gitDuty?.close());
      await this.#step("Git polling", async () => this.sync?.stop());
      await this.#step("applying the last commit", () => this.#applying);
      await this.#step("rollout writes", () => this.rollouts.idle());
      // After rollouts drained, so the last flush carries the final progress.
      await this.#step("status branch flush", async () => this.status?.close());
      await this.#step("rollouts", () => this.rollouts.close());
      this.subscriber.close();
      // Last: the status flush above still loads agents through the agent store.
      await this.#step("agent Redis connection", () => this.#agentRedis.quit());
      this.#agentRedis.disconnect();
    })();
    return this.#closing;
  }

  /**
   * One shutdown step, given at most `ms` (default 4 s): with Redis down, writes wait for a
   * reconnect that may never come; what is unfinished stays in Redis or is redone at start.
   */
  async #step(what: string, run: () => Promise<unknown>, ms = 4000): Promise<void> {
    const { logger } = this.#p;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      run().then(
        () => true,
        (err: unknown) => {
          logger.warn({ err, step: what }, "shutdown step failed");
          return true;
        },
      ),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    if (!done) logger.warn({ step: what, ms }, "shutdown step did not finish in time; moving on");
  }
}
