/**
 * The non-config parts of a group's bundle as group.yaml / fleet.yaml declare them: own
 * telemetry destinations (their secret references) and packages. Checked after the schema
 * passed; references are checked for form only, since their values exist only where the
 * service runs (they are resolved there, at rollout time).
 *
 * Codes: SECRET_REF_INVALID (error: a `${…}` that is not `${env:NAME}` or `${file:/abs/path}`),
 * SECRET_REF_REFUSED (error: a reference the service's policy refuses, secret-ref-policy.ts),
 * TELEMETRY_HEADER_PLAINTEXT (warning: a credential-like header written in clear),
 * PACKAGES_TOP_LEVEL (error: more than one top-level package).
 */
import { finding } from "./findings.js";
import type { Finding, PackageSpec } from "./model.js";
import type { RawPolicy } from "./policy.js";
import {
  DEFAULT_SECRET_REF_POLICY,
  refusedRef,
  type SecretRefPolicy,
} from "./secret-ref-policy.js";
import type { LoadedYaml } from "./yaml.js";

/** `${env:NAME}` or `${file:/absolute/path}`; anything else inside `${…}` is an error. */
export const SECRET_REF = /\$\{(env|file):([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CREDENTIAL_HEADER = /authorization|api[-_]?key|token|secret|password/i;

export interface RawPackage {
  version: string;
  sha256: string;
  url?: string;
  signature?: string;
  type?: "top-level" | "addon";
}

/** Why `value` holds a malformed reference, or undefined when every reference is well formed. */
export function secretRefProblem(value: string): string | undefined {
  const opened = value.split("${").length - 1;
  let refs = 0;
  for (const m of value.matchAll(SECRET_REF)) {
    refs++;
    const [, kind, arg = ""] = m;
    if (kind === "env" && !ENV_NAME.test(arg))
      return `"\${env:${arg}}" does not name an environment variable (letters, digits, _)`;
    if (kind === "file" && !arg.startsWith("/"))
      return `"\${file:${arg}}" must name an absolute path on the service's host`;
  }
  if (opened !== refs) return `a \${…} reference must be \${env:NAME} or \${file:/absolute/path}`;
  return undefined;
}

/** The first reference in `value` that `policy` refuses, with why; undefined when none. */
export function refusedRefIn(value: string, policy: Readonly<SecretRefPolicy>): string | undefined {
  for (const [, kind = "", arg = ""] of value.matchAll(SECRET_REF)) {
    const why = refusedRef(kind, arg, policy);
    if (why) return why;
  }
  return undefined;
}

/** Checks the telemetry destinations present in `raw`, located in `doc`, against `policy`. */
export function checkTelemetry(
  raw: RawPolicy,
  doc: LoadedYaml,
  policy: Readonly<SecretRefPolicy> = DEFAULT_SECRET_REF_POLICY,
): Finding[] {
  const out: Finding[] = [];
  for (const signal of ["metrics", "traces", "logs"] as const) {
    const dest = raw.telemetry?.[signal];
    if (!dest) continue;
    const values: Array<[string[], string, string]> = Object.entries(dest.headers ?? {}).map(
      ([k, v]) => [["telemetry", signal, "headers", k], k, v],
    );
    if (dest.tls?.ca !== undefined)
      values.push([["telemetry", signal, "tls", "ca"], "", dest.tls.ca]);
    for (const [path, header, value] of values) {
      const problem = secretRefProblem(value);
      const refused = problem ? undefined : refusedRefIn(value, policy);
      if (refused)
        out.push(
          finding(
            doc.file,
            doc.locate(path),
            "error",
            "SECRET_REF_REFUSED",
            `telemetry.${signal}: ${refused}`,
            {
              signal,
            },
          ),
        );
      else if (problem)
        out.push(
          finding(
            doc.file,
            doc.locate(path),
            "error",
            "SECRET_REF_INVALID",
            `telemetry.${signal}: ${problem}`,
            {
              signal,
            },
          ),
        );
      else if (header && CREDENTIAL_HEADER.test(header) && !value.includes("${"))
        out.push(
          finding(
            doc.file,
            doc.locate(path),
            "warning",
            "TELEMETRY_HEADER_PLAINTEXT",
            `telemetry.${signal}.headers.${header} is written in clear and would be committed: use \${env:NAME} or \${file:/path}, resolved by the service`,
            { signal, header },
          ),
        );
    }
  }
  return out;
}

/** The group's packages, sorted by name, with their type defaulted. */
export function packagesOf(raw: Record<string, RawPackage> | undefined): PackageSpec[] {
  return Object.entries(raw ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, p]) => ({
      name,
      type: p.type ?? (name === "" ? "top-level" : "addon"),
      version: p.version,
      sha256: p.sha256,
      ...(p.url ? { url: p.url } : {}),
      ...(p.signature ? { signature: p.signature } : {}),
    }));
}

/** At most one top-level package: the agent itself. */
export function checkPackages(
  raw: Record<string, RawPackage> | undefined,
  doc: LoadedYaml,
): Finding[] {
  const top = packagesOf(raw).filter((p) => p.type === "top-level");
  if (top.length <= 1) return [];
  const second = top[1] as PackageSpec;
  return [
    finding(
      doc.file,
      doc.locate(["packages", second.name]),
      "error",
      "PACKAGES_TOP_LEVEL",
      `packages: ${top.map((p) => `"${p.name}"`).join(" and ")} are both top-level; an agent has one top-level package (itself): make the others type: addon`,
      { packages: top.map((p) => p.name) },
    ),
  ];
}
