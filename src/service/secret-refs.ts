/**
 * Resolves the `${env:NAME}` / `${file:/path}` references of a bundle's telemetry headers and
 * TLS CA on the service's host. Resolved values live only in this process's memory: never in
 * Redis, Git, logs or the status branch (the bundle id hashes the references, not the values).
 *
 * A file is read as UTF-8 with one trailing newline dropped (as secret files are usually
 * written); it must be a regular file of at most MAX_SECRET_FILE_BYTES (a repository writer
 * chooses the path: /dev/zero or a huge file must not exhaust the service). A missing
 * variable or unreadable file is a SecretRefError naming the reference.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { TelemetryParts } from "../bundle.js";
import { CodedError } from "../errors.js";
import { SECRET_REF as REF } from "../validate/index.js";

/** Largest secret file read, in bytes: 64 KiB. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Reads a regular file of at most MAX_SECRET_FILE_BYTES as UTF-8; throws otherwise. */
export function readSecretFile(path: string): string {
  const fd = openSync(path, "r");
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_SECRET_FILE_BYTES)
      throw new Error(`${stat.size} bytes, more than ${MAX_SECRET_FILE_BYTES}`);
    const buf = Buffer.alloc(stat.size);
    const n = readSync(fd, buf, 0, stat.size, 0);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

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

/** `value` with each reference replaced by its value; throws SecretRefError on the first missing. */
export function resolveRefs(value: string, sources: RefSources): string {
  const read = sources.readFile ?? readSecretFile;
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
