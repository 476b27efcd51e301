/**
 * Plaintext secrets and placeholder syntax in a Collector configuration (warnings).
 *
 * - OTELCOL_PLAINTEXT_SECRET (the `redact` check): a password, token, API key, private key,
 *   Authorization header, credential in a URL or connection string, ... written out anywhere
 *   in the configuration instead of a `${env:VAR}` placeholder. The config repository is read
 *   by many; the value belongs in the agent's environment. Found by the same detector that
 *   keeps agents' secrets out of the status branch (src/redact: keys, values, structure), so
 *   what the validator warns about is what the status writer would hide.
 * - OTELCOL_BAD_PLACEHOLDER: `${...}` the Collector cannot expand (unclosed, empty or invalid
 *   variable name). Allowed: `${env:VAR}`, `${env:VAR:-default}`, `${VAR}`, `${scheme:...}`
 *   (file, http, ... providers) and the `$$` escape.
 */
import { isSecretKey as isSecretKeyShared, redactStructure } from "../redact/index.js";
import { type CheckContext, isObject } from "./otelcol-context.js";
import type { PathSegment } from "./source-map.js";

/** True when `key` names a setting that holds a secret value (src/redact's key layer). */
export function isSecretKey(key: string): boolean {
  return isSecretKeyShared(key);
}

function envName(path: readonly PathSegment[]): string {
  const parts = path.slice(1).filter((p): p is string => typeof p === "string");
  const picked = parts.length > 2 ? [parts[0] as string, parts[parts.length - 1] as string] : parts;
  return picked
    .join("_")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toUpperCase();
}

function show(path: readonly PathSegment[]): string {
  return path
    .map((p) => (typeof p === "number" ? `[${p}]` : p))
    .join(".")
    .replace(/\.\[/g, "[");
}

const WHY = {
  key: "",
  header: "",
  pair: "",
  alias: " (the value of a secret setting, through a YAML alias)",
  value: " (it looks like a credential)",
} as const;

/** Warns at every value the shared detector would redact (one warning per value). */
export function checkSecrets(ctx: CheckContext, config: Record<string, unknown>): void {
  const { findings } = redactStructure(config, () => "");
  const seen = new Set<string>();
  for (const f of findings) {
    const at = JSON.stringify(f.path);
    if (seen.has(at)) continue;
    seen.add(at);
    const path = f.path as PathSegment[];
    const name = envName(path) || "SECRET";
    ctx.add(
      path,
      "warning",
      "OTELCOL_PLAINTEXT_SECRET",
      `${show(path)} holds a secret in plain text${WHY[f.reason]}; write \${env:${name}} instead and set ${name} in the agent's environment`,
      { suggestion: `\${env:${name}}`, layer: f.reason },
    );
  }
}

const VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** Why a `${...}` body cannot be expanded, or undefined when it can. */
export function placeholderProblem(inner: string): string | undefined {
  const colon = inner.indexOf(":");
  if (colon === -1)
    return VAR.test(inner) ? undefined : `"${inner}" is not a valid environment variable name`;
  const scheme = inner.slice(0, colon);
  if (!SCHEME.test(scheme)) return `"${scheme}" is not a provider scheme`;
  if (scheme !== "env")
    return inner.length > colon + 1 ? undefined : `nothing follows "${scheme}:"`;
  const rest = inner.slice(colon + 1);
  const name = rest.split(":-")[0] ?? "";
  return VAR.test(name)
    ? undefined
    : name === ""
      ? "the variable name is empty"
      : `"${name}" is not a valid environment variable name`;
}

/** Finds malformed placeholders in every string of the configuration. */
export function checkPlaceholders(
  ctx: CheckContext,
  value: unknown,
  path: PathSegment[] = [],
  depth = 0,
): void {
  if (depth > 64) return;
  if (typeof value === "string") {
    let i = value.indexOf("$");
    while (i !== -1) {
      const next = value[i + 1];
      if (next === "$") {
        i = value.indexOf("$", i + 2);
        continue;
      }
      if (next === "{") {
        const end = value.indexOf("}", i);
        const problem =
          end === -1
            ? `the "\${" is never closed by "}"`
            : placeholderProblem(value.slice(i + 2, end));
        if (problem) {
          const text = end === -1 ? value.slice(i) : value.slice(i, end + 1);
          ctx.add(
            path,
            "warning",
            "OTELCOL_BAD_PLACEHOLDER",
            `${show(path)}: the placeholder ${text} cannot be expanded: ${problem} (write \${env:VAR}, \${env:VAR:-default}, or $$ for a literal $)`,
            { placeholder: text },
          );
          return;
        }
        i = value.indexOf("$", end + 1);
        continue;
      }
      i = value.indexOf("$", i + 1);
    }
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++)
      checkPlaceholders(ctx, value[i], [...path, i], depth + 1);
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) checkPlaceholders(ctx, v, [...path, k], depth + 1);
  }
}
