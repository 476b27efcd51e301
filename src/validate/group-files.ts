/**
 * The files a group serves, checked (a step of validateGroup, group.ts): each file loaded as
 * YAML (and as JSON when served as JSON), validated against the group's schema, then the
 * Collector semantic checks on the merged config (otelcol) or on each resource (otelcol-bridge).
 * A single file under a built-in schema depends on nothing but its bytes: its findings are
 * memoized by content.
 *
 * Codes: CONFIG_FILE_NOT_JSON (error), plus those of yaml.ts, schema-errors.ts, otelcol.ts and
 * bridge.ts.
 */
import { createHash } from "node:crypto";
import { checkBridgeResources } from "./bridge.js";
import type { CachedGroupResult, FileResultMemo } from "./cache.js";
import { jsonProblem, type SelectedFile } from "./config-files.js";
import { finding, START } from "./findings.js";
import type { Finding } from "./model.js";
import { checkCollectorConfig } from "./otelcol.js";
import { isObject, mergeConfigs, whereIn, whereInMerged } from "./otelcol-context.js";
import { type LoadedYaml, loadYaml } from "./yaml.js";

/** The schema a group's files follow, as loaded. */
export interface FileSchema {
  /** Built-in schema id, or repository path. */
  name: string;
  builtin: boolean;
  /** Validates one file; absent when the schema could not be loaded. */
  validateFile?: (doc: LoadedYaml) => Finding[];
  /** A repository schema the result depends on. */
  dep?: CachedGroupResult["schemaDep"];
}

/** Checks the group's files, pushing the findings; reads and fills `memo` for a single file. */
export function checkGroupFiles(
  dir: string,
  files: readonly SelectedFile[],
  schema: FileSchema,
  partial: boolean,
  findings: Finding[],
  memo?: FileResultMemo,
): void {
  const single = schema.builtin && files.length === 1 ? (files[0] as SelectedFile) : undefined;
  const memoKey =
    single && memo
      ? `${schema.name}\0${partial ? "partial" : "whole"}\0${createHash("sha256").update(single.body).digest("hex")}`
      : undefined;
  const memoized = memoKey ? memo?.get(memoKey, `${dir}/${single?.name}`) : undefined;
  const before = findings.length;
  if (memoized) findings.push(...memoized);
  else findings.push(...checkFiles(dir, files, schema, partial));
  if (memoKey && !memoized) memo?.set(memoKey, findings.slice(before));
}

/** Loads each file, validates it against the schema, then the Collector checks. */
function checkFiles(
  dir: string,
  files: readonly SelectedFile[],
  schema: FileSchema,
  partial: boolean,
): Finding[] {
  const findings: Finding[] = [];
  const docs: LoadedYaml[] = [];
  let structureOk = true;
  for (const file of files) {
    const r = loadYaml(file.body, `${dir}/${file.name}`);
    findings.push(...r.findings);
    if (!r.yaml) {
      structureOk = false;
      continue;
    }
    docs.push(r.yaml);
    const notJson = file.contentType === "application/json" ? jsonProblem(file.body) : undefined;
    if (notJson) {
      const at = notJson.offset === undefined ? START : r.yaml.offsetPosition(notJson.offset);
      findings.push(
        finding(
          r.yaml.file,
          at,
          "error",
          "CONFIG_FILE_NOT_JSON",
          `${file.name} is served as application/json but is not JSON (${notJson.message}): fix it, or rename it to .yaml`,
        ),
      );
      structureOk = false;
    }
    if (schema.validateFile) {
      const f = schema.validateFile(r.yaml);
      findings.push(...f);
      if (f.length > 0) structureOk = false;
    }
  }
  if (structureOk && docs.length > 0) findings.push(...semanticChecks(schema.name, docs, partial));
  return findings;
}

/** The Collector checks of files that loaded and follow their schema. */
function semanticChecks(schema: string, docs: LoadedYaml[], partial: boolean): Finding[] {
  if (schema === "otelcol") {
    // Several files are merged in order, as the Collector merges several --config files.
    const where = docs.length === 1 ? whereIn(docs[0] as LoadedYaml) : whereInMerged(docs);
    return checkCollectorConfig(
      where,
      docs.length === 1 ? docs[0]?.value : mergeConfigs(docs.map((d) => d.value)),
      { partial },
    );
  }
  if (schema !== "otelcol-bridge") return [];
  const findings = [...checkBridgeResources(docs)];
  for (const d of docs) {
    const spec = isObject(d.value) && isObject(d.value.spec) ? d.value.spec : undefined;
    if (spec && isObject(spec.config))
      findings.push(
        ...checkCollectorConfig(whereIn(d, ["spec", "config"]), spec.config, { partial }),
      );
  }
  return findings;
}
