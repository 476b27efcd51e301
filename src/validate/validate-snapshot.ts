/**
 * validateSnapshot: a RepositorySnapshot (a commit or a working tree) → findings and, when
 * there is no error, the FleetSpec to serve (DESIGN §1–§2). The same code runs before merge
 * (`opamp-gitops validate`) and before rollout (src/sync).
 *
 * fleet.yaml is optional; when present it must validate against schemas/fleet.schema.json,
 * and its values are the defaults of every group. A snapshot with no group is valid (zero
 * groups) with a REPO_NO_GROUPS warning: every agent stays unassigned.
 */
import { createHash } from "node:crypto";
import { checkTelemetry } from "./bundle-parts.js";
import { type CachedGroupResult, FileResultMemo, ValidationCache } from "./cache.js";
import { compareFindings, countErrors, finding, START } from "./findings.js";
import { type FleetDefaults, validateGroup } from "./group.js";
import type {
  Finding,
  FleetSpec,
  GroupFolder,
  GroupSpec,
  RepositorySnapshot,
  ValidationReport,
} from "./model.js";
import type { CollectorChecker } from "./otelcol-binary.js";
import { whereIn, whereInMerged } from "./otelcol-context.js";
import { checkPolicy, type RawPolicy } from "./policy.js";
import { SchemaLoader } from "./schema-ref.js";
import { validateBuiltin } from "./schemas.js";
import { DEFAULT_SECRET_REF_POLICY, type SecretRefPolicy } from "./secret-ref-policy.js";
import { type LoadedYaml, loadYaml } from "./yaml.js";

export interface ValidateOptions {
  /** Reuses the results of unchanged groups across calls (see cache.ts). */
  cache?: ValidationCache;
  /**
   * Problems found while reading the snapshot (symlinks, ...): merged into the report, and an
   * error among them withholds the fleet.
   */
  findings?: readonly Finding[];
  /**
   * Also hand each valid `otelcol` group's files to an operator's Collector binary
   * (otelcol-binary.ts); its refusals are errors of that group.
   */
  collector?: CollectorChecker;
  /**
   * Which secret references the service resolves (its --secret-env-prefix and --secret-dir);
   * a reference it refuses is a SECRET_REF_REFUSED error. Default: DEFAULT_SECRET_REF_POLICY.
   */
  secretRefs?: Readonly<SecretRefPolicy>;
}

function sha256(...parts: Array<Uint8Array | string>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(typeof p === "string" ? Buffer.byteLength(p) : p.length));
    h.update(len).update(p);
  }
  return h.digest("hex");
}

/** Identity of a group folder's content: its tree id, or a hash of its files. */
function folderKey(folder: GroupFolder): string {
  if (folder.treeId) return `tree:${folder.treeId}`;
  const parts: Array<Uint8Array | string> = [folder.groupYaml ? "y" : "n", folder.groupYaml ?? ""];
  for (const name of [...folder.files.keys()].sort())
    parts.push(name, folder.files.get(name) as Uint8Array);
  return `sha256:${sha256(...parts)}`;
}

function loadFleet(
  bytes: Uint8Array | undefined,
  secretRefs: Readonly<SecretRefPolicy>,
): {
  defaults: FleetDefaults;
  findings: Finding[];
} {
  if (!bytes) return { defaults: { raw: {} }, findings: [] };
  const loaded = loadYaml(bytes, "fleet.yaml");
  const doc = loaded.yaml;
  if (!doc) return { defaults: { raw: {} }, findings: loaded.findings };
  const schema = validateBuiltin("fleet", doc);
  if (schema.length > 0)
    return { defaults: { raw: {} }, findings: [...loaded.findings, ...schema] };
  const raw = (doc.value ?? {}) as RawPolicy;
  return {
    defaults: { raw, doc },
    findings: [
      ...loaded.findings,
      ...checkPolicy(raw, doc),
      ...checkTelemetry(raw, doc, secretRefs),
    ],
  };
}

/** The Collector binary's findings for a valid group (positions from its loaded files). */
async function collectorFindings(
  checker: CollectorChecker,
  name: string,
  folder: GroupFolder,
  spec: GroupSpec,
): Promise<Finding[]> {
  const dir = `groups/${name}`;
  const docs = spec.files
    .map((f) => loadYaml(f.body, `${dir}/${f.name}`).yaml)
    .filter((d): d is LoadedYaml => d !== undefined);
  const where = docs.length === 1 ? whereIn(docs[0] as LoadedYaml) : whereInMerged(docs);
  const groupDoc = folder.groupYaml
    ? loadYaml(folder.groupYaml, `${dir}/group.yaml`).yaml
    : undefined;
  const at = groupDoc
    ? { file: groupDoc.file, ...groupDoc.locate(["config", "distribution"]) }
    : { file: `${dir}/group.yaml`, ...START };
  return checker.check(dir, spec.distribution, spec.files, where, at);
}

export async function validateSnapshot(
  snapshot: RepositorySnapshot,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const cache = options.cache;
  const secretRefs = options.secretRefs ?? DEFAULT_SECRET_REF_POLICY;
  const fleet = loadFleet(snapshot.fleet, secretRefs);
  const findings: Finding[] = [...(options.findings ?? []), ...fleet.findings];
  // The policy judges group.yaml too: a cached result holds only for the same policy.
  const fleetHash = sha256(snapshot.fleet ?? "(none)", JSON.stringify(secretRefs));
  const schemas = new SchemaLoader(snapshot);
  const specs = new Map<string, GroupSpec>();
  const memo = cache?.files ?? new FileResultMemo();

  if (snapshot.groups.size === 0)
    findings.push(
      finding(
        "groups",
        START,
        "warning",
        "REPO_NO_GROUPS",
        "the repository has no group (no groups/<name>/ folder): no agent is served a configuration; add groups/<name>/group.yaml and the group's config files",
      ),
    );

  for (const name of [...snapshot.groups.keys()].sort()) {
    const folder = snapshot.groups.get(name) as GroupFolder;
    const key = `${name}\0${folderKey(folder)}\0${fleetHash}`;
    let result: CachedGroupResult | undefined = cache?.get(key);
    if (result?.schemaDep) {
      const current = await schemas.load(result.schemaDep.path);
      if ((current.hash ?? "missing") !== result.schemaDep.hash) result = undefined;
    }
    if (!result) {
      result = await validateGroup(name, folder, fleet.defaults, schemas, memo, secretRefs);
      const dep = result.schemaDep;
      // A result that depends on a broken schema file is not kept: the schema's own errors
      // are reported per validation, from the file.
      if (cache && (!dep || (await schemas.load(dep.path)).validate)) cache.set(key, result);
    }
    findings.push(...result.findings);
    let spec = result.spec;
    if (spec && options.collector && spec.schema === "otelcol") {
      const own = await collectorFindings(options.collector, name, folder, spec);
      findings.push(...own);
      if (own.some((f) => f.severity === "error")) spec = undefined;
    }
    if (spec) specs.set(name, spec);
  }
  findings.push(...(await schemas.findings()));
  cache?.endValidation();

  // Identical findings (a fleet.yaml problem seen by every group) are reported once.
  const unique = findings
    .sort(compareFindings)
    .filter((f, i, all) => i === 0 || compareFindings(all[i - 1] as Finding, f) !== 0);
  const errors = countErrors(unique);
  const report: ValidationReport = { findings: unique, errors, warnings: unique.length - errors };
  if (errors === 0) {
    const revoked = (fleet.defaults.raw as { revoked?: string[] }).revoked;
    const fleetSpec: FleetSpec = { groups: specs, ...(revoked ? { revoked } : {}) };
    report.fleet = fleetSpec;
  }
  return report;
}

export { ValidationCache };
