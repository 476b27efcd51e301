/**
 * Rollout-time checks of a valid commit's bundles, which only the service can make because
 * they depend on its host: every secret reference resolves (SECRET_REF_UNRESOLVED), and every
 * package without a `url` is in the service's package store (PACKAGE_NOT_IN_STORE). A failure
 * is an error finding like any validation error: the commit is not served, the last valid
 * state keeps being served, and the finding reaches the status branch and the API.
 *
 * Findings are located on the line of group.yaml (or fleet.yaml) that holds the reference or
 * the package's sha256, found in the file's text; line 1 when it is not found there.
 */
import type { Finding, RepositorySnapshot, ValidationReport } from "../validate/index.js";
import type { PackageStore } from "./package-store.js";
import { type RefSources, unresolvedRefs } from "./secret-refs.js";

function locate(bytes: Uint8Array | undefined, needle: string): { line: number; column: number } {
  const text = bytes ? Buffer.from(bytes).toString("utf8") : "";
  const at = text.indexOf(needle);
  if (at < 0) return { line: 1, column: 1 };
  const before = text.slice(0, at).split("\n");
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

export function checkBundles(
  report: ValidationReport,
  snapshot: RepositorySnapshot,
  sources: RefSources,
  packages: PackageStore | undefined,
): ValidationReport {
  if (!report.fleet) return report;
  const added: Finding[] = [];
  for (const [name, spec] of report.fleet.groups) {
    const groupYaml = snapshot.groups.get(name)?.groupYaml;
    for (const err of unresolvedRefs(spec.telemetry, sources)) {
      const ref = String(err.data.ref);
      const inGroup = locate(groupYaml, ref);
      const fromFleet =
        inGroup.line === 1 && snapshot.fleet && locate(snapshot.fleet, ref).line > 1;
      added.push({
        file: fromFleet ? "fleet.yaml" : `groups/${name}/group.yaml`,
        ...(fromFleet ? locate(snapshot.fleet, ref) : inGroup),
        severity: "error",
        code: err.code,
        message: `group ${name}: ${err.message}; set it where the service runs (the value is never committed)`,
        data: { group: name, ref },
      });
    }
    for (const p of spec.packages) {
      if (p.url || packages?.has(p.sha256)) continue;
      added.push({
        file: `groups/${name}/group.yaml`,
        ...locate(groupYaml, p.sha256),
        severity: "error",
        code: "PACKAGE_NOT_IN_STORE",
        message: packages
          ? `package "${p.name}" has no url and ${p.sha256} is not in --package-dir ${packages.dir}: add the file there, or give a url`
          : `package "${p.name}" has no url, and the service serves no package files (that needs --package-dir and --advertise-url): give a url, or start the service with both`,
        data: { group: name, package: p.name, sha256: p.sha256 },
      });
    }
  }
  if (added.length === 0) return report;
  const { fleet: _served, ...rest } = report;
  return {
    ...rest,
    findings: [...report.findings, ...added],
    errors: report.errors + added.length,
  };
}
