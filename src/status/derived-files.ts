/**
 * The files the writer derives at each flush rather than recording as they happen: the group
 * files (from the desired state FleetSync serves, the last validation and the rollout
 * source) and status/fleet.yaml (counts over the facts of every agent file). They are
 * re-derived from their sources after a restart, so nothing of them needs to wait in Redis.
 *
 * A group has a file while it is served, has findings in the last validation, or has a
 * rollout in progress; otherwise its file is removed (Git history keeps it).
 */

import type { Redactor } from "../redact/index.js";
import type { FleetDesiredState } from "../sync/desired-state.js";
import type { Finding } from "../validate/model.js";
import { fleetStatus } from "./fleet-status.js";
import { type GroupInputs, groupStatus, splitFindings, validationStatus } from "./group-status.js";
import type { StatusLogger } from "./logger.js";
import type { FleetFacts } from "./message.js";
import type { AgentFacts, GroupFacts, GroupRolloutInfo, RolloutStatusSource } from "./model.js";
import { FLEET_FILE, groupFilePath, isGroupName } from "./paths.js";
import { PROCESS_REDACTOR } from "./redact.js";
import { renderStatusFile } from "./render.js";

export interface SourceInfo {
  repository: string;
  branch: string;
  path: string;
}

interface Validation {
  commit: string;
  result: "passed" | "failed";
  findings: readonly Finding[];
}

export interface DerivedFile {
  path: string;
  content: string;
  facts: GroupFacts | FleetFacts;
}

export class DerivedFiles {
  readonly #source: SourceInfo;
  readonly #rollouts?: RolloutStatusSource;
  readonly #log: StatusLogger;
  #desired?: FleetDesiredState;
  #validation?: Validation;
  readonly #rolloutInfo = new Map<string, GroupRolloutInfo>();
  readonly #dirtyRollouts = new Set<string>();
  #allRolloutsDirty = true;
  readonly #alias: (commit: string) => string;
  /** Rendered group files by group, with the inputs they were rendered from. */
  readonly #rendered = new Map<string, { key: string; file: DerivedFile }>();

  /** Bumped by every input change, so a flush knows whether to render again. */
  version = 0;

  /** Redacts agent text quoted in group files; the writer sets the keyed one at start. */
  redactor: Redactor = PROCESS_REDACTOR;

  /**
   * `alias` maps a commit to the one to show for it: in the folder mode, a status commit
   * (which FleetSync sees as the new head of the config branch) stands for the config
   * commit under it, so status commits never report themselves as "served" (which would
   * make every flush cause the next).
   */
  constructor(
    source: SourceInfo,
    log: StatusLogger,
    rollouts?: RolloutStatusSource,
    alias: (commit: string) => string = (c) => c,
  ) {
    this.#source = source;
    this.#log = log;
    this.#rollouts = rollouts;
    this.#alias = alias;
  }

  get desired(): FleetDesiredState | undefined {
    return this.#desired;
  }

  /** A valid commit is served (FleetSync `updated`). */
  setDesired(state: FleetDesiredState): void {
    this.#desired = state;
    this.#validation = { commit: state.commit, result: "passed", findings: state.warnings };
    this.version++;
  }

  /** The head commit is invalid and not served (FleetSync `stalled`). */
  setStalled(commit: string, findings: readonly Finding[]): void {
    this.#validation = { commit, result: "failed", findings };
    this.version++;
  }

  /** A group's rollout changed (read at the next flush). */
  rolloutChanged(group: string): void {
    this.#dirtyRollouts.add(group);
    this.version++;
  }

  /** Every group's rollout is read again at the next flush (after becoming the writer). */
  markAllRolloutsDirty(): void {
    this.#allRolloutsDirty = true;
    this.version++;
  }

  /**
   * Reads the progress of every rollout changed since the last read; `render` uses what was
   * read last. The writer reads it before rendering its dirty agents, so that a commit never
   * shows a rollout further on than the agent files it holds (an agent's report reaches its
   * state before the rollout it advances).
   */
  async readRollouts(): Promise<void> {
    const source = this.#rollouts;
    if (!source) return;
    const groups = this.#allRolloutsDirty
      ? new Set([
          ...(this.#desired?.groups.keys() ?? []),
          ...this.#rolloutInfo.keys(),
          ...this.#dirtyRollouts,
        ])
      : new Set(this.#dirtyRollouts);
    this.#allRolloutsDirty = false;
    this.#dirtyRollouts.clear();
    for (const g of groups) {
      if (!isGroupName(g)) continue;
      try {
        const info = await source.status(g);
        if (info) this.#rolloutInfo.set(g, info);
        else this.#rolloutInfo.delete(g);
      } catch (err) {
        this.#dirtyRollouts.add(g);
        this.version++; // so the next flush reads it again even if nothing else changed
        this.#log.warn(
          { err, group: g },
          "status: reading rollout progress failed; retried next flush",
        );
      }
    }
  }

  /**
   * What the group's agents are served: the rollout source's answer when it has one (after a
   * rollback, the stable hash rather than the Git head's), else the desired state's hash.
   */
  #served(g: string): { configHash: string; hashCommit: string; files: string[] } | undefined {
    const desired = this.#desired?.groups.get(g);
    const info = this.#rolloutInfo.get(g);
    if (info?.served === undefined)
      return desired
        ? {
            configHash: desired.configHash,
            hashCommit: desired.hashCommit,
            files: desired.files.map((f) => f.name),
          }
        : undefined;
    if (info.served === null) return undefined;
    const { hash, commit, files } = info.served;
    return {
      configHash: hash,
      hashCommit: commit,
      files: hash === desired?.configHash ? desired.files.map((f) => f.name) : [...(files ?? [])],
    };
  }

  /** What a group file is rendered from, as a string. */
  #inputsKey(inputs: GroupInputs): string {
    return JSON.stringify([inputs.served, inputs.validation, inputs.rollout]);
  }

  /**
   * Renders every group file (a group whose inputs did not change is not rendered again) and
   * the fleet file; `removed` lists group files to delete.
   */
  async render(
    agents: Iterable<AgentFacts>,
    existingGroupPaths: Iterable<string>,
  ): Promise<{ files: DerivedFile[]; removed: string[] }> {
    const desired = this.#desired;
    const servedCommit = desired ? this.#alias(desired.commit) : null;
    const v0 = this.#validation;
    const v = v0 ? { ...v0, commit: this.#alias(v0.commit) } : undefined;
    const split = v
      ? splitFindings(v.findings)
      : { byGroup: new Map<string, Finding[]>(), fleet: [] };
    const groups = new Set<string>(desired?.groups.keys() ?? []);
    for (const g of split.byGroup.keys()) if (isGroupName(g)) groups.add(g);
    for (const [g, info] of this.#rolloutInfo)
      if (info.current?.state === "in-progress") groups.add(g);
    const files: DerivedFile[] = [];
    const unrenderable = new Set<string>();
    for (const g of [...groups].sort()) {
      const served = this.#served(g);
      const inputs: GroupInputs = {};
      if (served && servedCommit) inputs.served = { commit: servedCommit, ...served };
      if (v) inputs.validation = validationStatus(v.commit, v.result, split.byGroup.get(g) ?? []);
      const info = this.#rolloutInfo.get(g);
      if (info) inputs.rollout = info;
      const path = groupFilePath(g);
      const key = this.#inputsKey(inputs);
      const cached = this.#rendered.get(g);
      if (cached?.key === key) {
        files.push(cached.file);
        continue;
      }
      try {
        const { file, facts } = groupStatus(g, inputs, this.redactor);
        const rendered = { path, content: renderStatusFile("group", file, path), facts };
        this.#rendered.set(g, { key, file: rendered });
        files.push(rendered);
      } catch (err) {
        this.#log.error({ err, group: g }, "status: the group's status file cannot be written");
        // Keep what is committed rather than deleting the file.
        if (cached) files.push(cached.file);
        else unrenderable.add(path);
      }
    }
    for (const g of this.#rendered.keys()) if (!groups.has(g)) this.#rendered.delete(g);
    const kept = new Set(files.map((f) => f.path));
    const removed = [...existingGroupPaths].filter((p) => !kept.has(p) && !unrenderable.has(p));
    const servedHashes = new Map<string, string | null>();
    for (const g of desired?.groups.keys() ?? []) {
      servedHashes.set(g, this.#served(g)?.configHash ?? null);
    }
    let fleetValidation = null;
    if (v) {
      const all = validationStatus(v.commit, v.result, v.findings);
      const listed = validationStatus(v.commit, v.result, split.fleet);
      fleetValidation = { ...listed, errors: all.errors, warnings: all.warnings };
      if (listed.truncated === undefined) delete fleetValidation.truncated;
    }
    const fleet = fleetStatus(agents, {
      source: { ...this.#source, serving: servedCommit },
      validation: fleetValidation,
      servedHashes,
    });
    const fleetFacts: FleetFacts = {
      serving: servedCommit,
      validation: v
        ? { commit: v.commit, result: v.result, errors: fleetValidation?.errors ?? 0 }
        : null,
    };
    files.push({
      path: FLEET_FILE,
      content: renderStatusFile("fleet", fleet, FLEET_FILE),
      facts: fleetFacts,
    });
    return { files, removed };
  }
}
