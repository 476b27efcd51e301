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
 * written); it must be a regular file of at most MAX_SECRET_FILE_BYTES (/dev/zero or a huge
 * file must not exhaust the service). A missing variable or unreadable file is
 * SECRET_REF_UNRESOLVED. Both are SecretRefErrors naming the reference.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readlinkSync,
  readSync,
  realpathSync,
} from "node:fs";
import { dirname } from "node:path";
import type { TelemetryParts } from "../bundle.js";
import { CodedError } from "../errors.js";
import {
  DEFAULT_SECRET_REF_POLICY,
  isWithin,
  SECRET_REF as REF,
  refusedRef,
  type SecretRefPolicy,
} from "../validate/index.js";

/** Largest secret file read, in bytes: 64 KiB. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Reads a regular file of at most MAX_SECRET_FILE_BYTES as UTF-8; throws otherwise. With
 * `dir` (a real path), the file opened must be inside it: checked on the open descriptor
 * (Linux /proc/self/fd), so a folder on the way swapped for a symlink after the caller's
 * realpath cannot lead out (O_NOFOLLOW guards only the last component).
 */
export function readSecretFile(path: string, dir?: string): string {
  // The path is a real path (resolved by the caller): a symlink put in its place is not
  // followed, and a FIFO does not block the open (it is then refused as no regular file).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (dir !== undefined) {
      let opened: string | undefined;
      try {
        opened = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        // No /proc (not Linux): the realpath check before the open stands alone.
      }
      if (opened !== undefined && !isWithin(opened, dir))
        throw new SecretRefError(path, "it is outside the secret folder", "SECRET_REF_REFUSED");
    }
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

/** SECRET_REF_UNRESOLVED (missing, unreadable) or SECRET_REF_REFUSED (against the policy). */
export class SecretRefError extends CodedError {
  constructor(ref: string, why: string, code = "SECRET_REF_UNRESOLVED") {
    super(
      code,
      code === "SECRET_REF_REFUSED" ? why : `${ref} cannot be resolved on the service: ${why}`,
      { ref },
    );
  }
}

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

/**
 * The real paths of `path` and `dir` when the first is under the second; throws SecretRefError.
 * Messages reach the repository writer (PR gate, status branch): they name neither where a
 * path resolves to nor why it cannot be read (an errno tells whether a file exists).
 */
function realPathWithin(ref: string, path: string, dir: string): { real: string; realDir: string } {
  let realDir: string;
  try {
    realDir = realpathSync(dir);
  } catch (err) {
    throw new SecretRefError(
      ref,
      `the secret folder ${dir} cannot be read (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  const outside = () =>
    new SecretRefError(
      ref,
      `${ref} is refused: it resolves outside the secret folder ${dir} (--secret-dir)`,
      "SECRET_REF_REFUSED",
    );
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    // Missing: refused alike when the part of it that exists leads out of the folder, so that
    // the answer does not tell whether a file exists out there.
    let parent = dirname(path);
    for (;;) {
      try {
        const p = realpathSync(parent);
        if (p !== realDir && !isWithin(p, realDir)) throw outside();
        break;
      } catch (err) {
        if (err instanceof SecretRefError) throw err;
        if (dirname(parent) === parent) break;
        parent = dirname(parent);
      }
    }
    throw new SecretRefError(ref, `cannot read ${path}`);
  }
  if (!isWithin(real, realDir)) throw outside();
  return { real, realDir };
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
