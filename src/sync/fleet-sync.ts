/**
 * The sync loop: watches the Git source, and turns each new head into the desired state.
 *
 *   refresh (fetch) ──▶ read the commit's tree ──▶ validate ──▶ desired state ──▶ "updated"
 *        │ fails                │ fails              │ errors
 *        ▼                      ▼                    ▼
 *   "fetchFailed": RETRY with backoff          "stalled": never served, not retried
 *
 * Failure classes (as Flux has them):
 * - RETRY: the remote is unreachable, refuses credentials, the branch is missing, the object
 *   store cannot be read. Retried with capped exponential backoff, each attempt reported as a
 *   `fetchFailed` event; the last valid state keeps being served.
 * - STALLED: the commit itself is invalid (validation errors, a symlink in a group folder, a
 *   missing watched path). It is never served, the previous valid state stays current, and
 *   `stalled` carries every finding. It is not retried: the next commit is.
 *
 * Checks run one at a time. They happen every `pollIntervalMs` and on `trigger()` (webhooks):
 * triggers during a check are coalesced into one more check after it, and a trigger skips any
 * backoff delay. With a state directory, the last head and the last valid commit (with hash
 * provenance) survive restarts: after a restart on an invalid head, the last valid commit is
 * read again and served.
 */

import { Backoff, type BackoffOptions } from "../backoff.js";
import { TypedEvents } from "../events.js";
import type { Finding, RepositorySnapshot, ValidationReport } from "../validate/model.js";
import type { CommitExchange } from "./commit-exchange.js";
import {
  buildDesiredState,
  diffDesiredStates,
  type FleetDesiredState,
  type Provenance,
} from "./desired-state.js";
import { asSyncError, SyncError } from "./errors.js";
import { GitSource, type GitSourceOptions, type HeadUpdate } from "./git-source.js";
import { type SnapshotRead, SnapshotReader } from "./read-snapshot.js";
import { selectorConflicts } from "./selector-conflicts.js";
import type { Assignment, FleetSyncEvents, SyncOutcome, SyncStatus } from "./sync-events.js";
import { loadSyncState, type SyncStateFile, saveSyncState } from "./sync-state-file.js";

/** The validator seam: `(s) => validateSnapshot(s, { cache })` from src/validate. */
export type ValidateSnapshot = (
  snapshot: RepositorySnapshot,
) => ValidationReport | Promise<ValidationReport>;

export interface FleetSyncOptions extends Omit<GitSourceOptions, "previousHead"> {
  validate: ValidateSnapshot;
  /** Poll period in ms. Default 15 000; 0 polls never (triggers only; failures still retry). */
  pollIntervalMs?: number;
  /** Retry delays after a failed check. Defaults: 1 s doubling up to 5 min, 20 % jitter. */
  backoff?: BackoffOptions;
  /** Called when an event listener throws. */
  onListenerError?: (err: unknown, event: string) => void;
  /**
   * Whether a due poll runs now (default: always). Replicas sharing one repository poll only
   * while this says so (the Git lease holder); triggers and retries after a failure still run.
   */
  pollWhen?: () => boolean;
  /**
   * Replicas sharing one remote: while `exchange.fetching()` says no, a check takes the head
   * the fetching replica announced (and its objects) from the exchange instead of the remote;
   * while it says yes, each new head fetched is shared through it. See commit-exchange.ts.
   */
  exchange?: CommitExchange;
}

export class FleetSync {
  readonly source: GitSource;
  readonly #events: TypedEvents<FleetSyncEvents>;
  readonly #validate: ValidateSnapshot;
  readonly #pollMs: number;
  readonly #backoff: Backoff;
  readonly #stateDir?: string;
  readonly #sourceKey: string;
  readonly #pollWhen: () => boolean;
  readonly #exchange?: CommitExchange;
  /** The last head this process shared (as the fetching replica). */
  #shared?: string;
  #reader?: SnapshotReader;
  #current?: FleetDesiredState;
  /** The last head that was read and judged (valid or stalled). */
  #processed?: string;
  #status: SyncStatus;
  #persisted?: SyncStateFile;
  #loaded = false;
  #running?: Promise<SyncOutcome>;
  #queued?: Promise<SyncOutcome>;
  #timer?: NodeJS.Timeout;
  #started = false;
  #stopped = false;
  #reportedConflicts = new Set<string>();
  #fetchMs = 0;

  /** Checks the options (throws InvalidSourceError / UnsafePathError); does no I/O. */
  constructor(options: FleetSyncOptions) {
    this.source = new GitSource(options);
    this.#validate = options.validate;
    this.#pollMs = options.pollIntervalMs ?? 15_000;
    this.#backoff = new Backoff(options.backoff);
    this.#stateDir = options.stateDir;
    this.#pollWhen = options.pollWhen ?? (() => true);
    this.#exchange = options.exchange;
    this.#events = new TypedEvents<FleetSyncEvents>((err, name) =>
      options.onListenerError?.(err, String(name)),
    );
    this.#sourceKey = `${this.source.location}#${this.source.branch}:${this.source.root}`;
    this.#status = {
      source: this.source.location,
      branch: this.source.branch,
      path: this.source.root,
    };
  }

  on<K extends keyof FleetSyncEvents>(
    name: K,
    listener: (event: FleetSyncEvents[K]) => void,
  ): () => void {
    return this.#events.on(name, listener);
  }

  /** The desired state served now: the last valid commit's (undefined before the first). */
  get current(): FleetDesiredState | undefined {
    return this.#current;
  }

  /**
   * Reads of the source (for a remote: lists and fetches) attempted by this process so far;
   * heads taken from the exchange are not counted.
   */
  get checks(): number {
    return this.source.reads;
  }

  get status(): Readonly<SyncStatus> {
    return { ...this.#status, serving: this.#current?.commit };
  }

  /** Runs the first check (its outcome is returned, never thrown), then polls. */
  async start(): Promise<SyncOutcome> {
    this.#started = true;
    this.#stopped = false;
    return this.trigger();
  }

  /** Stops polling and waits for a check in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#queued?.catch(() => {});
    await this.#running?.catch(() => {});
  }

  /**
   * Asks for a check now (a webhook arrived). Concurrent calls are coalesced: while a check
   * runs, every trigger shares the one check that runs after it. Never rejects.
   */
  trigger(): Promise<SyncOutcome> {
    if (!this.#running) return this.#run();
    this.#queued ??= this.#running.then((last) => {
      this.#queued = undefined;
      return this.#stopped && this.#started ? last : this.#run();
    });
    return this.#queued;
  }

  /**
   * The group an agent joins in the current state (synchronous, no I/O: for the OpAMP message
   * path). A tie is returned in `conflict` and announced once per tie set and state.
   */
  assign(attributes: ReadonlyMap<string, string>, instanceUid?: string): Assignment {
    const state = this.#current;
    if (!state) return {};
    const result = state.matcher.match(attributes);
    if (result.conflict && result.group) {
      const key = result.conflict.join("\u0000");
      if (!this.#reportedConflicts.has(key)) {
        this.#reportedConflicts.add(key);
        this.#events.emit("conflict", {
          groups: result.conflict,
          group: result.group,
          commit: state.commit,
          instanceUid,
        });
      }
    }
    return result.group ? { ...result, desired: state.groups.get(result.group) } : result;
  }

  #run(): Promise<SyncOutcome> {
    clearTimeout(this.#timer);
    const run = this.#check()
      .catch((err: unknown) => this.#fail(err, "validate"))
      .finally(() => {
        this.#running = undefined;
      });
    this.#running = run;
    void run.then((outcome) => this.#schedule(outcome));
    return run;
  }

  #schedule(outcome: SyncOutcome): void {
    if (!this.#started || this.#stopped || this.#queued) return;
    const delay = outcome.result === "failed" ? outcome.retryInMs : this.#pollMs;
    if (delay <= 0) return;
    clearTimeout(this.#timer);
    const poll = outcome.result !== "failed";
    this.#timer = setTimeout(() => {
      // Another replica polls: wait for its announcement (a trigger) or for the duty.
      if (poll && !this.#pollWhen()) this.#schedule(outcome);
      else void this.trigger();
    }, delay);
    this.#timer.unref();
  }

  async #check(): Promise<SyncOutcome> {
    const started = performance.now();
    this.#status.lastCheckAt = Date.now();
    if (!this.#loaded) {
      this.#loaded = true;
      if (this.#stateDir) {
        this.#persisted = await loadSyncState(this.#stateDir, this.#sourceKey);
        if (this.#persisted?.head) this.source.assumeHead(this.#persisted.head);
      }
    }
    let head: HeadUpdate;
    const exchange = this.#exchange;
    const follow = exchange !== undefined && !exchange.fetching();
    try {
      head = follow ? await this.source.follow(exchange) : await this.source.refresh();
    } catch (err) {
      return this.#fail(err, "fetch");
    }
    if (exchange && !follow && head.commit !== this.#shared) this.#share(exchange, head.commit);
    this.#fetchMs = performance.now() - started;
    this.#status.head = head.commit;
    if (head.changed)
      this.#events.emit("headChanged", {
        commit: head.commit,
        previous: head.previous,
        historyRewritten: head.historyRewritten,
        fetched: head.fetched,
        ...(head.followed ? { followed: head.followed } : {}),
      });
    if (head.commit === this.#processed) {
      if (head.changed) await this.#persist();
      return this.#succeed({ result: "unchanged", commit: head.commit });
    }
    this.#reader ??= new SnapshotReader(this.source.store, this.source.root);
    let read: SnapshotRead;
    try {
      read = await this.#reader.read(head.commit);
    } catch (err) {
      return this.#fail(err, "read");
    }
    const outcome = await this.#evaluate(read, started, false);
    if (outcome.result === "stalled" && !this.#current) await this.#restore(head.commit);
    if (outcome.result !== "failed") await this.#persist();
    return outcome;
  }

  /**
   * Shares a fetched head with the other replicas, in the background (the exchange keeps the
   * order); one that could not be shared is shared again after the next fetch.
   */
  #share(exchange: CommitExchange, commit: string): void {
    this.#shared = commit;
    void exchange
      .share(commit, () => this.source.commitObjects(commit))
      .then((ok) => {
        if (!ok && this.#shared === commit) this.#shared = undefined;
      });
  }

  /** Validates a read commit and makes it current, or stalls it. */
  async #evaluate(read: SnapshotRead, started: number, restored: boolean): Promise<SyncOutcome> {
    const previous = this.#current;
    if (previous && read.rootTreeId !== undefined && read.rootTreeId === previous.rootTreeId) {
      // Nothing under the watched path changed (a monorepo commit elsewhere): same state.
      return this.#accept(
        { ...previous, commit: read.commit, builtAt: Date.now() },
        read,
        started,
        0,
        restored,
      );
    }
    let report: ValidationReport;
    const v0 = performance.now();
    try {
      report = await this.#validate(read.snapshot);
    } catch (err) {
      if (err instanceof SyncError) return this.#fail(err, "validate");
      report = {
        errors: 1,
        warnings: 0,
        findings: [
          {
            file: ".",
            line: 1,
            column: 1,
            severity: "error",
            code: "SYNC_VALIDATION_CRASHED",
            message: `validation failed unexpectedly: ${(err as Error)?.message ?? String(err)}`,
          },
        ],
      };
    }
    const validationMs = performance.now() - v0;
    const b0 = performance.now();
    const findings = [...read.findings, ...report.findings].sort(byLocation);
    const errors = findings.filter((f) => f.severity === "error").length;
    if (errors > 0 || !report.fleet) {
      if (restored) return { result: "stalled", commit: read.commit, findings };
      this.#processed = read.commit;
      this.#status.stalled = { commit: read.commit, findings };
      this.#events.emit("stalled", {
        commit: read.commit,
        findings,
        errors,
        warnings: findings.length - errors,
        serving: this.#current?.commit,
      });
      return this.#succeed({ result: "stalled", commit: read.commit, findings });
    }
    const locate = (group: string) => selectorLine(read.snapshot.groups.get(group)?.groupYaml);
    const warnings = [...findings, ...selectorConflicts(report.fleet.groups.values(), locate)];
    const provenance: Provenance | undefined =
      this.#current?.groups ??
      (this.#persisted?.lastValid
        ? new Map(Object.entries(this.#persisted.lastValid.groups))
        : undefined);
    const state = buildDesiredState(report.fleet, read.commit, provenance, {
      rootTreeId: read.rootTreeId,
      warnings,
    });
    return this.#accept(state, read, started, validationMs, restored, performance.now() - b0);
  }

  #accept(
    state: FleetDesiredState,
    read: SnapshotRead,
    started: number,
    validationMs: number,
    restored: boolean,
    buildMs = 0,
  ): SyncOutcome {
    const previous = this.#current;
    const changes = diffDesiredStates(previous, state);
    this.#current = state;
    this.#reportedConflicts.clear();
    if (!restored) {
      this.#processed = read.commit;
      this.#status.stalled = undefined;
    }
    this.#events.emit("updated", {
      state,
      previous,
      changes,
      read: read.stats,
      fetchMs: this.#fetchMs,
      validationMs,
      buildMs,
      durationMs: performance.now() - started,
      restored,
    });
    return this.#succeed({ result: "updated", commit: read.commit, changes });
  }

  /** After a restart on an invalid head: serve the last valid commit again, if still readable. */
  async #restore(head: string): Promise<void> {
    const last = this.#persisted?.lastValid;
    if (!last || last.commit === head || !this.#reader) return;
    try {
      const read = await this.#reader.read(last.commit);
      await this.#evaluate(read, performance.now(), true);
    } catch {
      // Gone (history rewritten and collected): nothing to serve until a valid commit.
    }
  }

  #succeed(outcome: SyncOutcome): SyncOutcome {
    const commit = "commit" in outcome ? outcome.commit : "";
    if (this.#backoff.attempts > 0)
      this.#events.emit("recovered", { attempts: this.#backoff.attempts, commit });
    this.#backoff.reset();
    this.#status.lastError = undefined;
    this.#status.lastSuccessAt = Date.now();
    return outcome;
  }

  #fail(err: unknown, phase: "fetch" | "read" | "validate"): SyncOutcome {
    const error = asSyncError(err);
    const retryInMs = this.#backoff.next();
    const attempt = this.#backoff.attempts;
    this.#status.lastError = { ...error.toJSON(), attempt, at: Date.now() };
    this.#events.emit("fetchFailed", {
      error: error.toJSON(),
      phase,
      attempt,
      retryInMs,
      serving: this.#current?.commit,
    });
    return { result: "failed", error, retryInMs };
  }

  async #persist(): Promise<void> {
    if (!this.#stateDir) return;
    const current = this.#current;
    const lastValid = current
      ? {
          commit: current.commit,
          groups: Object.fromEntries(
            [...current.groups].map(([n, g]) => [
              n,
              { configHash: g.configHash, hashCommit: g.hashCommit },
            ]),
          ),
        }
      : this.#persisted?.lastValid;
    const file: SyncStateFile = {
      version: 1,
      source: this.#sourceKey,
      head: this.source.head,
      lastValid,
    };
    try {
      await saveSyncState(this.#stateDir, file);
      this.#persisted = file;
    } catch (err) {
      this.#events.emit("persistFailed", { error: asSyncError(err).toJSON() });
    }
  }
}

/** Findings in reading order: file, line, column, code. */
function byLocation(a: Finding, b: Finding): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
}

/** Position of the `selector` key in a group.yaml, for selector-conflict warnings. */
function selectorLine(yaml: Uint8Array | undefined): { line: number; column: number } | undefined {
  if (!yaml) return undefined;
  const lines = Buffer.from(yaml).toString("utf8").split("\n");
  const i = lines.findIndex((l) => /^selector\s*:/.test(l));
  return i < 0 ? undefined : { line: i + 1, column: 1 };
}
