/**
 * `opamp-gitops validate [<dir>] [--format text|json|github] [--strict]`: validates a working
 * tree of the fleet repository, as a pull-request check does (DESIGN §2, §6).
 *
 * Secret references are judged by the service's policy (`--secret-dir`, `--secret-env-prefix`,
 * their OPAMP_GITOPS_* variables or `--settings` file, as serve reads them).
 *
 * Exit codes: 0 valid; 1 errors (or warnings, with --strict); 2 usage (the folder does not
 * exist or is not a directory, a bad secret setting).
 */
import { accessSync, constants } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { type SecretRefFlags, SettingsError, secretRefSettings } from "../settings.js";
import {
  CollectorChecker,
  formatReport,
  isValid,
  OtelcolFlagError,
  parseOtelcolFlags,
  type ReportFormat,
  readWorkingTree,
  validateSnapshot,
  WorkingTreeError,
} from "../validate/index.js";

/**
 * `secretDir`, `secretEnvPrefix`, `settings` (SecretRefFlags): the service's secret-reference
 * policy, read as serve reads it (flags, then OPAMP_GITOPS_SECRET_DIR /
 * OPAMP_GITOPS_SECRET_ENV_PREFIX, then the settings file); references it refuses are errors.
 */
export interface ValidateCommandOptions extends SecretRefFlags {
  format: ReportFormat;
  /** Warnings fail too. */
  strict: boolean;
  /** `--otelcol <path>` / `--otelcol <name>=<path>`: Collector binaries that also check. */
  otelcol?: string[];
}

/**
 * The checker for `--otelcol` values, or a usage problem (a malformed value, a path that is not
 * an executable file). Undefined checker when no value is given.
 */
export function otelcolChecker(
  values: readonly string[] | undefined,
): { checker?: CollectorChecker } | { problem: string } {
  if (!values?.length) return {};
  try {
    const binaries = parseOtelcolFlags(values);
    for (const [name, path] of binaries) {
      try {
        accessSync(path, constants.X_OK);
      } catch {
        return {
          problem: `--otelcol ${name ? `${name}=` : ""}${path}: not an executable file (give the path of a Collector binary)`,
        };
      }
    }
    return { checker: new CollectorChecker(binaries) };
  } catch (err) {
    if (err instanceof OtelcolFlagError) return { problem: err.message };
    throw err;
  }
}

/** Validates the working tree at `dir`, writes the report to `out`, returns the exit code. */
export async function runValidate(
  dir: string,
  opts: ValidateCommandOptions,
  out: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const otelcol = otelcolChecker(opts.otelcol);
  if ("problem" in otelcol) {
    out.write(`opamp-gitops validate: ${otelcol.problem}\n`);
    return 2;
  }
  let secretRefs: ReturnType<typeof secretRefSettings>;
  try {
    secretRefs = secretRefSettings(opts, env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    out.write(`opamp-gitops validate: ${err.message}\n`);
    return 2;
  }
  const root = resolve(dir);
  let read: Awaited<ReturnType<typeof readWorkingTree>>;
  try {
    read = await readWorkingTree(root);
  } catch (err) {
    if (err instanceof WorkingTreeError) {
      out.write(
        `opamp-gitops validate: ${err.message} (give the folder of the fleet repository: the one holding groups/)\n`,
      );
      return 2;
    }
    throw err;
  }
  const report = await validateSnapshot(read.snapshot, {
    findings: read.findings,
    secretRefs,
    ...(otelcol.checker ? { collector: otelcol.checker } : {}),
  });
  const rel = relative(process.cwd(), root);
  const pathPrefix =
    rel === "" || rel.startsWith("..") || isAbsolute(rel) ? (rel === "" ? "" : root) : rel;
  const groups = [...read.snapshot.groups.keys()].sort();
  out.write(formatReport(report, opts.format, { pathPrefix, groups, strict: opts.strict }));
  return isValid(report, opts.strict) ? 0 : 1;
}
