/**
 * Resolves the `${env:NAME}` / `${file:/path}` references of a bundle's telemetry headers and
 * TLS CA on the service's host. Resolved values live only in this process's memory: never in
 * Redis, Git, logs or the status branch (the bundle id hashes the references, not the values).
 *
 * A file is read as UTF-8 with one trailing newline dropped (as secret files are usually
 * written). A missing variable or unreadable file is a SecretRefError naming the reference.
 */
import { readFileSync } from "node:fs";
import type { TelemetryParts } from "../bundle.js";
import { CodedError } from "../errors.js";

const REF = /\$\{(env|file):([^}]*)\}/g;

export class SecretRefError extends CodedError {
  constructor(ref: string, why: string) {
    super("SECRET_REF_UNRESOLVED", `${ref} cannot be resolved on the service: ${why}`, { ref });
  }
}

export interface RefSources {
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file's text; throws when it cannot. Default: readFileSync. */
  readFile?: (path: string) => string;
}

/** Every reference in `value`, as written (`${env:NAME}`). */
export function refsIn(value: string): string[] {
  return [...value.matchAll(REF)].map((m) => m[0]);
}

/** `value` with each reference replaced by its value; throws SecretRefError on the first missing. */
export function resolveRefs(value: string, sources: RefSources): string {
  const read = sources.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  return value.replace(REF, (ref, kind: string, arg: string) => {
    if (kind === "env") {
      const v = sources.env[arg];
      if (v === undefined) throw new SecretRefError(ref, `environment variable ${arg} is not set`);
      return v;
    }
    try {
      return read(arg).replace(/\r?\n$/, "");
    } catch (err) {
      throw new SecretRefError(
        ref,
        `cannot read ${arg} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  });
}

/** The telemetry destinations with every reference resolved (see resolveRefs). */
export function resolveTelemetry(telemetry: TelemetryParts, sources: RefSources): TelemetryParts {
  const out: TelemetryParts = {};
  for (const signal of ["metrics", "traces", "logs"] as const) {
    const d = telemetry[signal];
    if (!d) continue;
    out[signal] = {
      endpoint: d.endpoint,
      ...(d.headers
        ? {
            headers: Object.fromEntries(
              Object.entries(d.headers).map(([k, v]) => [k, resolveRefs(v, sources)]),
            ),
          }
        : {}),
      ...(d.tls
        ? {
            tls: {
              ...d.tls,
              ...(d.tls.ca !== undefined ? { ca: resolveRefs(d.tls.ca, sources) } : {}),
            },
          }
        : {}),
    };
  }
  return out;
}

/** Every reference in `telemetry` that cannot be resolved, with why (empty: all resolve). */
export function unresolvedRefs(telemetry: TelemetryParts, sources: RefSources): SecretRefError[] {
  const out: SecretRefError[] = [];
  for (const d of Object.values(telemetry)) {
    if (!d) continue;
    for (const v of [...Object.values(d.headers ?? {}), d.tls?.ca ?? ""]) {
      try {
        resolveRefs(v, sources);
      } catch (err) {
        if (err instanceof SecretRefError) out.push(err);
        else throw err;
      }
    }
  }
  return out;
}
