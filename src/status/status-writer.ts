/**
 * The status branch writer (DESIGN §4): what agents report, what the service serves and how
 * rollouts progress, committed back to Git so `git log` of the status branch is the audit
 * trail of what really ran.
 *
 *   agent events ──▶ AgentRecorder ──▶ Redis: dirty uids                (any replica)
 *                                          │ every interval, lock holder only:
 *                                          ▼ render each dirty agent once (worker thread)
 *                                      Redis: pending path → content
 *   FleetSync, rollouts ──▶ DerivedFiles   │
 *                                ▼         ▼
 *          planFlush ──▶ publishPlan: blobs, changed trees, ONE commit, CAS / push ──▶ ack
 *
 * Contract:
 * - Only meaningful changes are written (an unchanged rendering records nothing; heartbeats
 *   and last-seen times are not rendered at all). Every `intervalMs` the lock holder turns
 *   whatever is pending into one commit with every changed file and a message saying what
 *   happened (message.ts).
 * - Nothing is lost: a change leaves Redis only after the commit holding it was published.
 *   A branch that moved is built on again (publish.ts); a remote that cannot be reached keeps
 *   everything pending, and the first flush once it is back publishes one commit with all.
 * - One writer per branch: a Redis lock (lock.ts); publishing is a compare-and-swap anyway.
 * - Agents offline for more than `retentionMs` are removed from the branch.
 * - A process that died (SIGKILL) may take dirty marks it had not sent yet (agent-recorder.ts
 *   sends them in 20 ms windows) while the changes they describe are stored: an agent whose
 *   disconnect was stored, then left the dead process' liveness set, is marked by nobody
 *   else. So the writer re-marks every agent once it sees a process forgotten by a liveness
 *   sweep (replicasLostKey, counted by the sweep's atomic forget) since its last flush, as it
 *   does when it takes the writer role.
 * - Loose objects are packed between flushes (packer.ts).
 *
 * Wiring: `new StatusWriter(options)`, `start()` (subscribes to `agentEvents`, `fleetSync`
 * and `rollouts`, flushes every interval), `close()` (last flush if writing, lock released).
 */

import { Backoff } from "../backoff.js";
import { TypedEvents } from "../events.js";
import type { AgentState, EffectiveConfig } from "../opamp/index.js";
import { agentAttributes, replicasLostKey } from "../opamp/index.js";
import { Marker, Redactor } from "../redact/index.js";
import { asSyncError } from "../sync/errors.js";
import { compileStatusSchemas } from "../validate/status-schemas.js";
import { AgentRecorder, type Placement, UNASSIGNED_PLACEMENT } from "./agent-recorder.js";
import type { AgentStatusOptions } from "./agent-status.js";
import { DerivedFiles } from "./derived-files.js";
import { effectiveConfigStatus } from "./effective-config.js";
import { LockLostError } from "./errors.js";
import { type CommittedFacts, planFlush, sharedFacts } from "./flush-plan.js";
import { ObjectWriter, Packer, type PackResult } from "./git-store/index.js";
import { WriterLock } from "./lock.js";
import { SILENT, type StatusLogger } from "./logger.js";
import type { FleetFacts } from "./message.js";
import type { AgentFacts, GroupFacts } from "./model.js";
import { attachAgentEvents } from "./opamp-adapter.js";
import { OwnCommits } from "./own-commits.js";
import { kindOfPath } from "./paths.js";
import { PendingStore } from "./pending-store.js";
import { publishPlan } from "./publish.js";
import { loadRedactionKey } from "./redaction-key.js";
import { attachFleetSync } from "./sync-adapter.js";
import type { StatusMode, StatusTarget } from "./target.js";
import {
  DEFAULT_AUTHOR,
  DEFAULTS,
  type FlushResult,
  resolveTarget,
  type StatusWriterEvents,
  type StatusWriterOptions,
} from "./writer-options.js";

export type {
  AgentSource,
  FlushResult,
  StatusWriterEvents,
  StatusWriterOptions,
} from "./writer-options.js";

export class StatusWriter {
  readonly branch: string;
  readonly mode: StatusMode;
  readonly target: StatusTarget;
  readonly store: PendingStore;
  readonly recorder: AgentRecorder;
  readonly derived: DerivedFiles;
  readonly #options: StatusWriterOptions;
  readonly #log: StatusLogger;
  readonly #events: TypedEvents<StatusWriterEvents>;
  readonly #lock: WriterLock;
  readonly #backoff = new Backoff({ initialMs: 1_000, maxMs: 60_000 });
  readonly #now: () => number;
  readonly #own = new OwnCommits();
  /** Agent rendering options, shared with the recorder (the redactor is set once keyed). */
  readonly #render: AgentStatusOptions;
  #objects?: ObjectWriter;
  #packer?: Packer;
  #unsubscribe: Array<() => void> = [];
  #timer?: NodeJS.Timeout;
  #chain: Promise<unknown> = Promise.resolve();
  #started = false;
  #closed = false;
  #closing = false;
  #writer = false;
  #syncSettled = false;
  /** Facts of the files as committed (loaded when becoming the writer, advanced by flushes). */
  #committed: CommittedFacts = { agents: new Map(), groups: new Map() };
  #derivedVersion = -1;
  #objectsAtPack = 0;
  #lastSweep = 0;
  /** The count of processes forgotten by liveness sweeps, as last read (undefined: not yet). */
  #replicasLost: string | null | undefined;

  /** Checks the options (throws InvalidStatusOptionsError / SyncError); does no I/O. */
  constructor(options: StatusWriterOptions) {
    this.#options = options;
    this.#log = options.logger ?? SILENT;
    this.#render = {
      maxConfigBytes: options.maxConfigBytes,
      effectiveConfig: options.effectiveConfig ?? "redacted",
    };
    this.#now = options.now ?? Date.now;
    const resolved = resolveTarget(options);
    this.mode = resolved.mode;
    this.branch = resolved.branch;
    this.target = resolved.target;
    this.#events = new TypedEvents<StatusWriterEvents>((err, name) =>
      this.#log.warn({ err, event: String(name) }, "status: an event listener threw"),
    );
    this.store = new PendingStore(options.redis, { prefix: options.prefix, branch: this.branch });
    this.#lock = new WriterLock(options.redis, this.store.keys.lock, {
      ttlMs: options.lockTtlMs,
      onLost: () => this.#setWriter(false),
    });
    this.recorder = new AgentRecorder(
      this.store,
      options.placement ?? this.#defaultPlacement(),
      this.#log,
      this.#render,
      options.agents,
    );
    this.derived = new DerivedFiles(resolved.source, this.#log, options.rollouts, (c) =>
      this.#own.alias(c),
    );
    if (options.redactionKey) this.#useKey(options.redactionKey);
  }

  /**
   * Reads the fleet's redaction key from Redis (creating it once), so markers are the same on
   * every replica and after restarts. Call before `start()`.
   */
  async loadRedactionKey(): Promise<void> {
    this.#useKey(await loadRedactionKey(this.#options.redis, this.#options.prefix));
  }

  /**
   * A config map as this writer would write it into an agent's status file: the same
   * `--status-effective-config` mode, size limit and keyed redaction (the console shows it).
   */
  renderConfigMap(config: EffectiveConfig | null | undefined) {
    const r = this.#render;
    return effectiveConfigStatus(config, r.maxConfigBytes, (n) => n, {
      mode: r.effectiveConfig ?? "redacted",
      ...(r.redactor ? { redactor: r.redactor } : {}),
    });
  }

  #useKey(key: Uint8Array): void {
    const redactor = new Redactor(new Marker(key));
    this.#render.redactor = redactor;
    this.#render.redactionKey = key;
    this.derived.redactor = redactor;
  }

  on<K extends keyof StatusWriterEvents>(
    name: K,
    listener: (event: StatusWriterEvents[K]) => void,
  ): () => void {
    return this.#events.on(name, listener);
  }

  /** True while this replica holds the writer lock. */
  get isWriter(): boolean {
    return this.#writer;
  }

  /** `fleetSync.assign()`; "not known yet" until FleetSync's first check settled. */
  #defaultPlacement(): Placement {
    return (agent) => {
      const sync = this.#options.fleetSync;
      if (!sync) return UNASSIGNED_PLACEMENT;
      if (!sync.current) return this.#syncSettled ? UNASSIGNED_PLACEMENT : undefined;
      const a = sync.assign(agentAttributes(agent), agent.instanceUid);
      if (!a.group || !a.desired) return UNASSIGNED_PLACEMENT;
      return {
        group: a.group,
        desiredHash: a.desired.configHash,
        desiredCommit: a.desired.hashCommit,
      };
    };
  }

  /** Subscribes to the sources and starts flushing every interval. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    // Group and fleet files are checked on this thread: compiled here, not in a flush.
    compileStatusSchemas();
    this.recorder.warm();
    const { agentEvents, fleetSync, rollouts } = this.#options;
    if (agentEvents) this.#unsubscribe.push(attachAgentEvents(agentEvents, this.recorder));
    if (fleetSync)
      this.#unsubscribe.push(
        attachFleetSync(fleetSync, {
          desired: (state, changes) => {
            this.derived.setDesired(state);
            const moved =
              changes &&
              changes.added.length +
                changes.removed.length +
                changes.hashChanged.length +
                changes.settingsChanged.length >
                0;
            if (moved && this.#writer)
              void this.reconcile().catch((err) =>
                this.#log.warn({ err: asSyncError(err).toJSON() }, "status: reconcile failed"),
              );
          },
          stalled: (commit, findings) => this.derived.setStalled(commit, findings),
          // Agents parked until now stay dirty and are rendered at the next flush.
          settled: () => {
            this.#syncSettled = true;
          },
        }),
      );
    if (rollouts) this.#unsubscribe.push(rollouts.subscribe((g) => this.derived.rolloutChanged(g)));
    this.#schedule(this.#options.intervalMs ?? DEFAULTS.intervalMs);
  }

  #schedule(delay: number): void {
    if (this.#closed || !this.#started) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), delay);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    let delay = this.#options.intervalMs ?? DEFAULTS.intervalMs;
    try {
      await this.flush();
      this.#backoff.reset();
    } catch (err) {
      const error = asSyncError(err).toJSON();
      delay = Math.max(delay, this.#backoff.next());
      const attempt = this.#backoff.attempts;
      this.#log.warn(
        { err: error, attempt, retryInMs: delay },
        "status: flush failed; changes stay pending",
      );
      this.#events.emit("flushFailed", { error, attempt, retryInMs: delay });
    }
    this.#schedule(delay);
  }

  /**
   * Records one agent (the adapter does this for every agent event): marks it dirty; it is
   * rendered at the next flush (agent-recorder.ts).
   */
  recordAgent(agent: Readonly<AgentState>): Promise<void> {
    return this.recorder.record(agent);
  }

  /**
   * Marks agents (every agent of the agent source, or `uids`) dirty, so the next flush renders
   * them again from their state then; unchanged files are dropped. The service calls it when
   * its placement of agents changed (e.g. a rollout stage moved a cohort). Resolves the number
   * of agents marked once the marks are in Redis (or their retry is scheduled, as for events).
   */
  async reconcile(uids?: readonly string[]): Promise<number> {
    const source = this.#options.agents;
    if (!uids && !source) return 0;
    const list = uids ?? (await (source as NonNullable<typeof source>).list());
    await this.recorder.mark(list);
    return list.length;
  }

  /** Waits until every agent recorded in this process is marked dirty in Redis. */
  settled(): Promise<void> {
    return this.recorder.settled();
  }

  /**
   * One flush now (serialized with the timer's): becomes the writer if the lock is free,
   * then publishes one commit with everything pending. Throws when publishing failed (the
   * changes stay pending).
   */
  flush(): Promise<FlushResult> {
    const run = this.#chain.then(() => this.#flush());
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Packs loose objects now (tests, benchmarks, maintenance). */
  pack(): Promise<PackResult | undefined> {
    const run = this.#chain.then(async () => {
      if (!this.#packer || !this.#objects) return undefined;
      const r = await this.#packer.pack(await this.target.base());
      this.#objectsAtPack = this.#objects.written.objects;
      return r;
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  #setWriter(writer: boolean): void {
    if (this.#writer === writer) return;
    this.#writer = writer;
    this.#events.emit("writerChanged", { writer });
    this.#log.info(
      { branch: this.branch, writer },
      writer ? "status: writing the status branch" : "status: no longer the status writer",
    );
  }

  async #becomeWriter(): Promise<boolean> {
    if (this.#writer && (await this.#lock.renew())) return true;
    if (!(await this.#lock.acquire())) return false;
    try {
      await this.target.open();
      this.#objects ??= new ObjectWriter(this.target.gitdir);
      this.#packer ??= new Packer(this.#objects, {
        ...this.#options.packer,
        prune: this.target.ownsStore,
        // Off the event loop, on the render workers the flush uses anyway.
        writeBlobPack: (dir, blobs, depth) => this.recorder.packBlobs(dir, blobs, depth),
      });
      const committed: CommittedFacts = { agents: new Map(), groups: new Map() };
      for (const [path, f] of await this.store.facts()) {
        const kind = kindOfPath(path);
        if (kind === "agent") committed.agents.set(path, sharedFacts(f as AgentFacts));
        else if (kind === "group") committed.groups.set(path, f as GroupFacts);
        else if (kind === "fleet") committed.fleet = f as FleetFacts;
      }
      this.#committed = committed;
      this.#derivedVersion = -1;
      // Another writer may have rendered since: what this process rendered proves nothing.
      this.recorder.forget();
      this.derived.markAllRolloutsDirty();
      this.#objectsAtPack = -(await this.#packer.looseObjectIds()).size;
      if (this.mode === "folder")
        await this.#own.learn(
          this.#objects,
          await this.target.base(),
          (this.#options.author ?? DEFAULT_AUTHOR).email,
        );
      this.#setWriter(true);
      // Read before the reconcile: a process forgotten after this read is re-marked later.
      this.#replicasLost = await this.#readReplicasLost();
      await this.reconcile();
      return true;
    } catch (err) {
      await this.#lock.release();
      this.#setWriter(false);
      throw err;
    }
  }

  async #flush(): Promise<FlushResult> {
    const t0 = performance.now();
    const idle = { files: 0, pending: 0, attempts: 0, ms: 0 };
    if (this.#closed && !this.#closing) return { ...idle, skipped: "closed" };
    await this.recorder.settled();
    if (!(await this.#becomeWriter())) return { ...idle, skipped: "not-writer" };
    await this.#reconcileAfterReplicaLoss();
    // Rollout progress first, then the agents: a report that advances a rollout reaches the
    // agent's state (and its dirty mark) before the rollout, so every agent file rendered
    // after this read is at least as new as the progress it is committed with. Read after,
    // a report arriving while the agents render would show a rollout completed next to agent
    // files still applying. A change after this read bumps the version: the next flush.
    const derivedVersion = this.derived.version;
    await this.derived.readRollouts();
    await this.recorder.settled();
    await this.recorder.renderDirty(this.#keepLock());
    await this.#sweep();
    const pending = await this.store.read();
    if (pending.length === 0 && derivedVersion === this.#derivedVersion)
      return { ...idle, ms: performance.now() - t0 };
    const plan = await planFlush(pending, this.#committed, this.derived);
    const objects = this.#objects as ObjectWriter;
    const packer = this.#packer;
    const published = await publishPlan(
      {
        objects,
        target: this.target,
        packBlobs:
          packer && this.#options.packAfterObjects !== false
            ? (c) => packer.packBlobs(c)
            : undefined,
        stillWriter: () => this.#lock.renew(),
        attempts: this.#options.publishAttempts ?? DEFAULTS.publishAttempts,
        author: this.#options.author ?? DEFAULT_AUTHOR,
        ...(this.#options.writerId ? { writerId: this.#options.writerId } : {}),
        now: this.#now,
        log: this.#log,
      },
      plan,
    );
    if (published.commit) this.#own.remember(published.commit, published.base);
    await this.store.ack(plan.ack, this.#lock.token);
    this.#committed = plan.after;
    this.#derivedVersion = derivedVersion;
    const result: FlushResult = {
      commit: published.commit,
      files: published.files,
      pending: pending.length,
      message: published.message,
      attempts: published.attempts,
      tree: published.tree,
      ms: performance.now() - t0,
    };
    if (result.commit) {
      this.#log.info(
        { commit: result.commit, files: result.files, ms: Math.round(result.ms) },
        `status: ${result.message?.split("\n")[0]}`,
      );
      result.pack = await this.#maybePack(result.commit);
    }
    this.#events.emit("flushed", result);
    return result;
  }

  /**
   * Renews the lock between render slices, at most every TTL/3 (the lease's own timer may
   * starve while a long flush keeps the event loop busy). A lock that another replica took
   * stops the flush here (LockLostError), before anything more is rendered.
   */
  #keepLock(): () => Promise<void> {
    const every = (this.#options.lockTtlMs ?? 30_000) / 3;
    let last = performance.now();
    return async () => {
      if (performance.now() - last < every) return;
      if (!(await this.#lock.renew())) throw new LockLostError(this.branch);
      last = performance.now();
    };
  }

  #readReplicasLost(): Promise<string | null> {
    return this.#options.redis.get(replicasLostKey(this.#options.prefix));
  }

  /**
   * Re-marks every agent when a process was forgotten by a liveness sweep since the last
   * check: the dirty marks it held in memory are lost, the changes they describe are stored
   * (for an agent that disconnected just before, nothing else would mark it again). Unchanged
   * agents cost a load and a fingerprint, not a render. One GET per flush otherwise.
   */
  async #reconcileAfterReplicaLoss(): Promise<void> {
    const lost = await this.#readReplicasLost();
    if (lost === this.#replicasLost) return;
    this.#log.info({ branch: this.branch }, "status: a server process stopped; re-marking agents");
    await this.reconcile();
    // Only after the reconcile: one that threw (the agent list failed) runs at the next flush.
    this.#replicasLost = lost;
  }

  /** Records the removal of agents offline for longer than the retention period. */
  async #sweep(): Promise<void> {
    const now = this.#now();
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    const retention = this.#options.retentionMs ?? DEFAULTS.retentionMs;
    // Taken before reading what is pending: a record made after it wins over the removal
    // (the script refuses), and one made before it is pending, so the agent is skipped.
    const notBefore = await this.store.now();
    const pending = await this.store.pendingPaths();
    // A reconnect marked after this flush rendered is not pending yet, but dirty.
    const dirty = new Set((await this.recorder.dirty.read()).map((e) => e.uid));
    for (const [path, f] of this.#committed.agents) {
      if (f.connected || pending.has(path) || dirty.has(f.uid)) continue;
      const since = f.lastDisconnectedAt ?? f.lastConnectedAt;
      if (since === null || now - since <= retention) continue;
      const removed = await this.store.remove(f.uid, path, notBefore);
      this.recorder.forget(f.uid);
      // Refused when the agent was recorded meanwhile: its file stays, and what it shows too.
      if (removed) await this.#options.agents?.forgotten?.([f.uid]);
    }
  }

  async #maybePack(tip: string): Promise<PackResult | undefined> {
    const threshold = this.#options.packAfterObjects ?? DEFAULTS.packAfterObjects;
    const objects = this.#objects as ObjectWriter;
    if (threshold === false || !this.#packer) return undefined;
    if (objects.written.objects - this.#objectsAtPack < threshold) return undefined;
    this.#objectsAtPack = objects.written.objects;
    try {
      const r = await this.#packer.pack(tip);
      this.#events.emit("packed", r);
      this.#log.info({ ...r }, "status: packed loose objects");
      return r;
    } catch (err) {
      this.#log.error(
        { err: asSyncError(err).toJSON() },
        "status: packing failed; loose objects kept",
      );
      return undefined;
    }
  }

  /**
   * Stops listening and flushing. With `flush` (default true) and the writer role, one last
   * flush publishes what is pending (failures are logged; the changes stay in Redis). Then
   * the lock is released.
   */
  async close({ flush = true }: { flush?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    clearTimeout(this.#timer);
    await this.recorder.settled();
    this.#closing = flush && this.#writer;
    this.#closed = true;
    if (this.#closing)
      await this.flush().catch((err) =>
        this.#log.warn(
          { err: asSyncError(err).toJSON() },
          "status: last flush failed; changes stay pending",
        ),
      );
    this.#closing = false;
    await this.#chain;
    this.recorder.close();
    await this.#lock.release();
    this.#setWriter(false);
  }
}
