/**
 * Validation of one group folder (DESIGN §1–§2): its name, group.yaml (schema, then
 * semantics), the files it serves, the schema they follow, and each file against it (with
 * the Collector semantic checks for the built-in otelcol schema). Produces the GroupSpec when
 * the group has no error.
 *
 * Codes: GROUP_INVALID_NAME, GROUP_YAML_MISSING (errors), GROUP_SELECTOR_MATCHES_ALL
 * (warning), CONFIG_SCHEMA_PATH, CONFIG_SCHEMA_NOT_FOUND, CONFIG_SCHEMA_INVALID (errors),
 * plus those of config-files.ts, policy.ts, yaml.ts, schema-errors.ts, otelcol.ts and bridge.ts.
 */
import { createHash } from "node:crypto";
import { configHash } from "../config-hash.js";
import { bridgeKey, checkBridgeResources } from "./bridge.js";
import { checkPackages, checkTelemetry, packagesOf, type RawPackage } from "./bundle-parts.js";
import type { CachedGroupResult, FileResultMemo } from "./cache.js";
import { jsonProblem, selectConfigFiles } from "./config-files.js";
import { countErrors, finding, START } from "./findings.js";
import type { Finding, GroupFolder, GroupSpec, Selector } from "./model.js";
import { checkCollectorConfig } from "./otelcol.js";
import { isObject, mergeConfigs, whereIn, whereInMerged } from "./otelcol-context.js";
import { checkPolicy, type RawPolicy, resolvePolicy } from "./policy.js";
import { type SchemaLoader, unsafePathReason } from "./schema-ref.js";
import { BUILTIN_CONFIG_SCHEMAS, validateBuiltin, validateCustom } from "./schemas.js";
import { type LoadedYaml, loadYaml } from "./yaml.js";

export const GROUP_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** fleet.yaml as the groups see it. */
export interface FleetDefaults {
  raw: RawPolicy;
  /** Where fleet.yaml is, to locate a schema it names. */
  doc?: LoadedYaml;
}

interface RawGroup extends RawPolicy {
  packages?: Record<string, RawPackage>;
  selector: { match?: Record<string, string>; expressions?: Selector["expressions"] };
  priority?: number;
}

export async function validateGroup(
  name: string,
  folder: GroupFolder,
  fleet: FleetDefaults,
  schemas: SchemaLoader,
  memo?: FileResultMemo,
): Promise<CachedGroupResult> {
  const dir = `groups/${name}`;
  const findings: Finding[] = [];
  const done = (extra: Partial<CachedGroupResult> = {}): CachedGroupResult => ({
    findings,
    ...extra,
  });

  if (!GROUP_NAME.test(name) || name.length > 63)
    findings.push(
      finding(
        dir,
        START,
        "error",
        "GROUP_INVALID_NAME",
        `group folder "${name}" is not a valid group name: use at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (like a DNS label)`,
        { name },
      ),
    );
  if (!folder.groupYaml) {
    findings.push(
      finding(
        dir,
        START,
        "error",
        "GROUP_YAML_MISSING",
        `${dir}/ has no group.yaml: add one with at least a selector, or remove the folder`,
        { name },
      ),
    );
    return done();
  }
  const loaded = loadYaml(folder.groupYaml, `${dir}/group.yaml`);
  findings.push(...loaded.findings);
  const doc = loaded.yaml;
  if (!doc) return done();
  const schemaFindings = validateBuiltin("group", doc);
  findings.push(...schemaFindings);
  if (schemaFindings.length > 0) return done();
  const raw = doc.value as RawGroup;
  findings.push(...checkPolicy(raw, doc), ...checkTelemetry(raw, doc));
  findings.push(...checkPackages(raw.packages, doc));
  const match = raw.selector.match ?? {};
  const expressions = raw.selector.expressions ?? [];
  if (Object.keys(match).length === 0 && expressions.length === 0)
    findings.push(
      finding(
        doc.file,
        doc.locate(["selector"]),
        "warning",
        "GROUP_SELECTOR_MATCHES_ALL",
        "the selector is empty, so this group matches every agent: add selector.match or selector.expressions",
        {},
      ),
    );

  const selected = selectConfigFiles(dir, folder.files, raw.config?.files, doc);
  findings.push(...selected.findings);
  const policy = resolvePolicy(raw, fleet.raw);

  // The schema the files follow, and where config.schema was written.
  const schemaDoc = raw.config?.schema !== undefined ? doc : fleet.doc;
  const schemaAt = schemaDoc
    ? { file: schemaDoc.file, ...schemaDoc.locate(["config", "schema"]) }
    : { file: doc.file, ...START };
  const schemaError = (code: string, message: string) =>
    findings.push(
      finding(schemaAt.file, schemaAt, "error", code, message, { schema: policy.schema }),
    );
  let validateFile: ((d: LoadedYaml) => Finding[]) | undefined;
  let schemaDep: CachedGroupResult["schemaDep"];
  const builtin = BUILTIN_CONFIG_SCHEMAS.includes(policy.schema);
  if (builtin) {
    validateFile = (d) => validateBuiltin(policy.schema as "otelcol" | "otelcol-bridge", d);
  } else {
    const unsafe = unsafePathReason(policy.schema);
    if (unsafe) {
      schemaError(
        "CONFIG_SCHEMA_PATH",
        `config.schema "${policy.schema}" is neither a built-in schema (${BUILTIN_CONFIG_SCHEMAS.join(", ")}) nor a path inside the repository: ${unsafe}`,
      );
    } else {
      const loadedSchema = await schemas.load(policy.schema);
      schemaDep = { path: policy.schema, hash: loadedSchema.hash ?? "missing" };
      if (loadedSchema.problem)
        schemaError(loadedSchema.problem.code, loadedSchema.problem.message);
      const validate = loadedSchema.validate;
      if (validate) validateFile = (d) => validateCustom(validate, d);
    }
  }

  // A single file under a built-in schema depends on nothing but its bytes: memoized.
  const single =
    builtin && selected.files.length === 1
      ? (selected.files[0] as (typeof selected.files)[number])
      : undefined;
  const partial = raw.config?.partial === true;
  const memoKey =
    single && memo
      ? `${policy.schema}\0${partial ? "partial" : "whole"}\0${createHash("sha256").update(single.body).digest("hex")}`
      : undefined;
  const memoized = memoKey ? memo?.get(memoKey, `${dir}/${single?.name}`) : undefined;
  const before = findings.length;
  if (memoized) findings.push(...memoized);
  else checkFiles();
  if (memoKey && !memoized) memo?.set(memoKey, findings.slice(before));

  if (countErrors(findings) > 0 || !validateFile) return done(schemaDep ? { schemaDep } : {});
  // Served entries are keyed by file name; for the OpAMP Bridge by <namespace>/<name> of the
  // resource each file holds (bridge.ts), as the bridge refuses any other key.
  const entryName = (f: (typeof selected.files)[number]) =>
    policy.schema === "otelcol-bridge"
      ? (bridgeKey(loadYaml(f.body, `${dir}/${f.name}`).yaml?.value) ?? f.name)
      : f.name;
  const files = selected.files.map((f) => ({
    name: entryName(f),
    contentType: f.contentType,
    body: f.body,
  }));
  const spec: GroupSpec = {
    name,
    selector: {
      match: { ...match },
      expressions: expressions.map((e) => ({
        key: e.key,
        operator: e.operator,
        values: [...(e.values ?? [])],
      })),
    },
    priority: raw.priority ?? 0,
    files,
    configHash: configHash(files),
    schema: policy.schema,
    ...(raw.config?.distribution ? { distribution: raw.config.distribution } : {}),
    rollout: policy.rollout,
    heartbeatIntervalSeconds: policy.heartbeatIntervalSeconds,
    telemetry: policy.telemetry,
    packages: packagesOf(raw.packages),
  };
  return done({ spec, ...(schemaDep ? { schemaDep } : {}) });

  /** Loads each file, validates it against the schema, then the Collector checks. */
  function checkFiles(): void {
    const docs: LoadedYaml[] = [];
    let structureOk = true;
    for (const file of selected.files) {
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
      if (validateFile) {
        const f = validateFile(r.yaml);
        findings.push(...f);
        if (f.length > 0) structureOk = false;
      }
    }
    if (structureOk && docs.length > 0) {
      if (policy.schema === "otelcol") {
        // Several files are merged in order, as the Collector merges several --config files.
        const where = docs.length === 1 ? whereIn(docs[0] as LoadedYaml) : whereInMerged(docs);
        findings.push(
          ...checkCollectorConfig(
            where,
            docs.length === 1 ? docs[0]?.value : mergeConfigs(docs.map((d) => d.value)),
            { partial },
          ),
        );
      } else if (policy.schema === "otelcol-bridge") {
        findings.push(...checkBridgeResources(docs));
        for (const d of docs) {
          const spec = isObject(d.value) && isObject(d.value.spec) ? d.value.spec : undefined;
          if (spec && isObject(spec.config))
            findings.push(
              ...checkCollectorConfig(whereIn(d, ["spec", "config"]), spec.config, { partial }),
            );
        }
      }
    }
  }
}
