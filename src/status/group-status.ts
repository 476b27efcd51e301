/**
 * A group's status file (status/groups/<group>.yaml): what the service serves the group, the
 * last validation result as far as it concerns the group, its current rollout and recent
 * history. Pure; no timestamps but the rollout's own, so an unchanged group is unchanged text.
 *
 * Rollout text quotes agents (a failure's error, the reason a rollout ended or paused, who
 * paused it): every such string goes through the redactor and is cut at MAX_GROUP_TEXT.
 */

import type { Redactor } from "../redact/index.js";
import type { Finding } from "../validate/model.js";
import type {
  FindingStatus,
  GroupFacts,
  GroupRolloutInfo,
  GroupStatusFile,
  HashRef,
  HashRefStatus,
  HistoryEntryStatus,
  RolloutFileStatus,
  RolloutProgress,
  ValidationStatus,
} from "./model.js";
import { API_VERSION } from "./model.js";
import { checkGroupName } from "./paths.js";
import { PROCESS_REDACTOR, redactText } from "./redact.js";

export const MAX_FINDINGS = 50;
/** Longest rollout text (reasons, errors, `paused.by`) in a group file, in characters. */
export const MAX_GROUP_TEXT = 1024;
export const MAX_HISTORY = 20;
export const MAX_FAILURES = 20;

export interface ServedGroup {
  /** The fleet commit served now. */
  commit: string;
  configHash: string;
  hashCommit: string;
  files: string[];
}

export interface GroupInputs {
  served?: ServedGroup;
  validation?: ValidationStatus;
  rollout?: GroupRolloutInfo;
}

/** The group a finding belongs to (`…groups/<group>/…`), or undefined for fleet-level files. */
export function findingGroup(file: string): string | undefined {
  const m = /(?:^|\/)groups\/([^/]+)\//.exec(file);
  return m?.[1];
}

function findingStatus(f: Finding): FindingStatus {
  return {
    severity: f.severity,
    code: f.code,
    file: f.file,
    line: Math.max(0, Math.trunc(f.line)),
    column: Math.max(0, Math.trunc(f.column)),
    message: f.message.length > 2000 ? `${f.message.slice(0, 2000)}…` : f.message,
  };
}

/** A validation summary over `findings` (the list is cut at MAX_FINDINGS, errors first). */
export function validationStatus(
  commit: string,
  result: "passed" | "failed",
  findings: readonly Finding[],
): ValidationStatus {
  const errors = findings.filter((f) => f.severity === "error");
  const warnings = findings.filter((f) => f.severity !== "error");
  const listed = [...errors, ...warnings].slice(0, MAX_FINDINGS).map(findingStatus);
  const out: ValidationStatus = {
    commit,
    result,
    errors: errors.length,
    warnings: warnings.length,
    findings: listed,
  };
  if (findings.length > listed.length) out.truncated = findings.length - listed.length;
  return out;
}

/** Splits findings into per-group lists and the rest (fleet.yaml, unknown folders). */
export function splitFindings(findings: readonly Finding[]): {
  byGroup: Map<string, Finding[]>;
  fleet: Finding[];
} {
  const byGroup = new Map<string, Finding[]>();
  const fleet: Finding[] = [];
  for (const f of findings) {
    const g = findingGroup(f.file);
    if (g === undefined) {
      fleet.push(f);
      continue;
    }
    const list = byGroup.get(g) ?? [];
    list.push(f);
    byGroup.set(g, list);
  }
  return { byGroup, fleet };
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : iso(ms));
const ref = (r: HashRef): HashRefStatus => ({ hash: r.hash, commit: r.commit });

function rolloutStatus(r: RolloutProgress, red: Redactor): RolloutFileStatus {
  const say = (t: string) => redactText(t, red, MAX_GROUP_TEXT);
  return {
    id: r.id,
    state: r.state,
    from: r.from ? ref(r.from) : null,
    target: ref(r.target),
    stage: Math.max(0, r.stage + 1),
    stages: Math.max(1, r.stages),
    percent: r.percent ?? null,
    paused: r.hold ? { source: r.hold.source, by: say(r.hold.by), at: iso(r.hold.at) } : null,
    members: r.members,
    cohort: r.cohort,
    applied: r.applied,
    failed: r.failed,
    pending: r.pending,
    startedAt: iso(r.startedAt),
    endedAt: isoOrNull(r.endedAt),
    reason: r.endReason ? say(r.endReason) : null,
    failures: r.failures.slice(0, MAX_FAILURES).map((f) => ({
      instanceUid: f.uid,
      reason: f.reason,
      error: f.error ? say(f.error) : null,
      at: iso(f.at),
    })),
  };
}

/** The group file and the facts the writer keeps of it. */
export function groupStatus(
  group: string,
  inputs: GroupInputs,
  redactor: Redactor = PROCESS_REDACTOR,
): { file: GroupStatusFile; facts: GroupFacts } {
  checkGroupName(group);
  const current = inputs.rollout?.current;
  const history: HistoryEntryStatus[] = (inputs.rollout?.history ?? [])
    .filter((h) => h.id !== current?.id)
    .slice(0, MAX_HISTORY)
    .map((h) => ({
      id: h.id,
      state: h.state,
      from: h.from ? ref(h.from) : null,
      target: ref(h.target),
      startedAt: iso(h.startedAt),
      endedAt: isoOrNull(h.endedAt),
      reason: h.endReason ? redactText(h.endReason, redactor, MAX_GROUP_TEXT) : null,
    }));
  const rollout = current ? rolloutStatus(current, redactor) : null;
  const file: GroupStatusFile = {
    apiVersion: API_VERSION,
    kind: "GroupStatus",
    group,
    served: inputs.served
      ? {
          commit: inputs.served.commit,
          configHash: inputs.served.configHash,
          hashCommit: inputs.served.hashCommit,
          files: [...inputs.served.files],
        }
      : null,
    validation: inputs.validation ?? null,
    rollout,
    ...incompatibleStatus(inputs.rollout?.incompatible),
    history,
  };
  const v = inputs.validation;
  const facts: GroupFacts = {
    group,
    configHash: inputs.served?.configHash ?? null,
    hashCommit: inputs.served?.hashCommit ?? null,
    validation: v ? { commit: v.commit, result: v.result, errors: v.errors } : null,
    rollout: rollout
      ? {
          id: rollout.id,
          state: rollout.state,
          stage: rollout.stage,
          stages: rollout.stages,
          percent: rollout.percent,
          paused: rollout.paused !== null,
          reason: rollout.reason,
        }
      : null,
  };
  return { file, facts };
}

/** The `incompatible` block, only when there are such agents (bounded as the schema says). */
function incompatibleStatus(info: GroupRolloutInfo["incompatible"]): {
  incompatible?: GroupStatusFile["incompatible"];
} {
  if (!info || info.count <= 0) return {};
  return {
    incompatible: {
      count: info.count,
      examples: info.examples.slice(0, 10).map((e) => ({
        instanceUid: e.uid.slice(0, 64),
        missing: e.missing.slice(0, 64).map((m) => m.slice(0, 128)),
      })),
    },
  };
}
