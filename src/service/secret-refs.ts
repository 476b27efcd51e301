/**
 * Resolves the `${env:NAME}` / `${file:/path}` references of a bundle's telemetry headers and
 * TLS CA on the service's host. Resolved values live only in this process's memory: never in
 * Redis, Git, logs or the status branch (the bundle id hashes the references, not the values).
 *
 * A repository writer chooses the references, and the endpoint their values are sent to, so
 * only what the policy allows is resolved (secret-ref-policy.ts in src/validate): variables
 * named with `--secret-env-prefix`, and files whose real path (symlinks and `..` resolved with
 * realpath) is under the real path of `--secret-dir`. Anything else is SECRET_REF_REFUSED.
 *
 * A file is read as UTF-8 with one trailing newline dropped (as secret files are usually
 * written), by secret-file.ts (a regular file of at most MAX_SECRET_FILE_BYTES). A missing
 * variable or unreadable file is SECRET_REF_UNRESOLVED. Both are SecretRefErrors
 * (secret-ref-error.ts) naming the reference.
 */
import type { TelemetryParts } from "../bundle.js";
import {
  DEFAULT_SECRET_REF_POLICY,
  SECRET_REF as REF,
  refusedRef,
  type SecretRefPolicy,
} from "../validate/index.js";
import { readSecretFile, realPathWithin } from "./secret-file.js";
import { SecretRefError } from "./secret-ref-error.js";

export interface RefSources {
  env: Readonly<Record<string, string | undefined>>;
  /** What may be referenced. Default: DEFAULT_SECRET_REF_POLICY (no file at all). */
  policy?: Readonly<SecretRefPolicy>;
  /**
   * Reads a file's text (given its real path and the secret folder's); throws when it cannot.
   * Default: readSecretFile.
   */
  readFile?: (path: string, dir: string) => string;
}

/** `value` with each reference replaced by its value; throws SecretRefError on the first missing. */
export function resolveRefs(value: string, sources: RefSources): string {
  const read = sources.readFile ?? readSecretFile;
  const policy = sources.policy ?? DEFAULT_SECRET_REF_POLICY;
  return value.replace(REF, (ref, kind: string, arg: string) => {
    const refused = refusedRef(kind, arg, policy);
    if (refused) throw new SecretRefError(ref, refused, "SECRET_REF_REFUSED");
    if (kind === "env") {
      const v = sources.env[arg];
      if (v === undefined) throw new SecretRefError(ref, `environment variable ${arg} is not set`);
      return v;
    }
    const { real, realDir } = realPathWithin(ref, arg, policy.dir as string);
    try {
      return read(real, realDir).replace(/\r?\n$/, "");
    } catch (err) {
      if (err instanceof SecretRefError)
        throw new SecretRefError(
          ref,
          `${ref} is refused: it resolves outside the secret folder ${policy.dir} (--secret-dir)`,
          err.code,
        );
      // Our own checks (no regular file, too large) are kept; an errno is not (see above).
      const code = (err as NodeJS.ErrnoException).code;
      throw new SecretRefError(
        ref,
        code ? `cannot read ${arg}` : `cannot read ${arg} (${(err as Error).message})`,
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
