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
import { configHash } from "../config-hash.js";
import { bridgeKey } from "./bridge.js";
import { checkPackages, checkTelemetry, packagesOf, type RawPackage } from "./bundle-parts.js";
import type { CachedGroupResult, FileResultMemo } from "./cache.js";
import { type SelectedFile, selectConfigFiles } from "./config-files.js";
import { countErrors, finding, START } from "./findings.js";
import { checkGroupFiles, type FileSchema } from "./group-files.js";
import type { Finding, GroupFolder, GroupSpec, Selector } from "./model.js";
import { checkPolicy, type RawPolicy, resolvePolicy } from "./policy.js";
import { type SchemaLoader, unsafePathReason } from "./schema-ref.js";
import { BUILTIN_CONFIG_SCHEMAS, validateBuiltin, validateCustom } from "./schemas.js";
import type { SecretRefPolicy } from "./secret-ref-policy.js";
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

type Policy = ReturnType<typeof resolvePolicy>;

/**
 * Validates one group folder, in order: its name, group.yaml, the files it serves, the schema
 * they follow, each file against it; then builds the GroupSpec when there is no error.
 */
export async function validateGroup(
  name: string,
  folder: GroupFolder,
  fleet: FleetDefaults,
  schemas: SchemaLoader,
  memo?: FileResultMemo,
  secretRefs?: Readonly<SecretRefPolicy>,
): Promise<CachedGroupResult> {
  const dir = `groups/${name}`;
  const findings: Finding[] = checkGroupName(name, dir);
  const group = readGroupYaml(name, dir, folder.groupYaml, findings, secretRefs);
  if (!group) return { findings };
  const { doc, raw } = group;
  const selected = selectConfigFiles(dir, folder.files, raw.config?.files, doc);
  findings.push(...selected.findings);
  const policy = resolvePolicy(raw, fleet.raw);
  // config.schema is located where it was written: group.yaml, else fleet.yaml.
  const schemaDoc = raw.config?.schema !== undefined ? doc : fleet.doc;
  const schema = await loadFileSchema(policy.schema, schemaDoc, doc, schemas, findings);
  const dep = schema.dep ? { schemaDep: schema.dep } : {};
  const partial = raw.config?.partial === true;
  checkGroupFiles(dir, selected.files, schema, partial, findings, memo);
  if (countErrors(findings) > 0 || !schema.validateFile) return { findings, ...dep };
  return { findings, spec: groupSpec(name, dir, raw, policy, selected.files), ...dep };
}

/** GROUP_INVALID_NAME when the folder's name is not a group name. */
function checkGroupName(name: string, dir: string): Finding[] {
  if (GROUP_NAME.test(name) && name.length <= 63) return [];
  return [
    finding(
      dir,
      START,
      "error",
      "GROUP_INVALID_NAME",
      `group folder "${name}" is not a valid group name: use at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (like a DNS label)`,
      { name },
    ),
  ];
}

/**
 * group.yaml loaded, checked against its schema, then its policy and selector; undefined
 * (with the findings pushed) when it is missing or does not follow the schema.
 */
function readGroupYaml(
  name: string,
  dir: string,
  bytes: Uint8Array | undefined,
  findings: Finding[],
  secretRefs?: Readonly<SecretRefPolicy>,
): { doc: LoadedYaml; raw: RawGroup } | undefined {
  if (!bytes) {
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
    return undefined;
  }
  const loaded = loadYaml(bytes, `${dir}/group.yaml`);
  findings.push(...loaded.findings);
  const doc = loaded.yaml;
  if (!doc) return undefined;
  const schemaFindings = validateBuiltin("group", doc);
  findings.push(...schemaFindings);
  if (schemaFindings.length > 0) return undefined;
  const raw = doc.value as RawGroup;
  findings.push(...checkPolicy(raw, doc), ...checkTelemetry(raw, doc, secretRefs));
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
  return { doc, raw };
}

/**
 * The schema the files follow: built-in, or a JSON Schema in the repository (loaded through
 * `schemas`; its hash is the result's dependency). Problems are findings at config.schema in
 * `schemaDoc` (the start of `groupDoc` when no document names it).
 */
async function loadFileSchema(
  schema: string,
  schemaDoc: LoadedYaml | undefined,
  groupDoc: LoadedYaml,
  schemas: SchemaLoader,
  findings: Finding[],
): Promise<FileSchema> {
  const schemaAt = schemaDoc
    ? { file: schemaDoc.file, ...schemaDoc.locate(["config", "schema"]) }
    : { file: groupDoc.file, ...START };
  const schemaError = (code: string, message: string) =>
    findings.push(finding(schemaAt.file, schemaAt, "error", code, message, { schema }));
  if (BUILTIN_CONFIG_SCHEMAS.includes(schema))
    return {
      name: schema,
      builtin: true,
      validateFile: (d) => validateBuiltin(schema as "otelcol" | "otelcol-bridge", d),
    };
  const unsafe = unsafePathReason(schema);
  if (unsafe) {
    schemaError(
      "CONFIG_SCHEMA_PATH",
      `config.schema "${schema}" is neither a built-in schema (${BUILTIN_CONFIG_SCHEMAS.join(", ")}) nor a path inside the repository: ${unsafe}`,
    );
    return { name: schema, builtin: false };
  }
  const loadedSchema = await schemas.load(schema);
  const dep = { path: schema, hash: loadedSchema.hash ?? "missing" };
  if (loadedSchema.problem) schemaError(loadedSchema.problem.code, loadedSchema.problem.message);
  const validate = loadedSchema.validate;
  return {
    name: schema,
    builtin: false,
    dep,
    ...(validate ? { validateFile: (d: LoadedYaml) => validateCustom(validate, d) } : {}),
  };
}

/** The GroupSpec of a group without errors. */
function groupSpec(
  name: string,
  dir: string,
  raw: RawGroup,
  policy: Policy,
  selected: readonly SelectedFile[],
): GroupSpec {
  // Served entries are keyed by file name; for the OpAMP Bridge by <namespace>/<name> of the
  // resource each file holds (bridge.ts), as the bridge refuses any other key.
  const entryName = (f: SelectedFile) =>
    policy.schema === "otelcol-bridge"
      ? (bridgeKey(loadYaml(f.body, `${dir}/${f.name}`).yaml?.value) ?? f.name)
      : f.name;
  const files = selected.map((f) => ({
    name: entryName(f),
    contentType: f.contentType,
    body: f.body,
  }));
  const match = raw.selector.match ?? {};
  const expressions = raw.selector.expressions ?? [];
  return {
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
}
