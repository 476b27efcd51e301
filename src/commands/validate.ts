/**
 * `opamp-gitops validate [<dir>] [--format text|json|github] [--strict]`: validates a working
 * tree of the fleet repository, as a pull-request check does (DESIGN §2, §6).
 *
 * Exit codes: 0 valid; 1 errors (or warnings, with --strict); 2 usage (the folder does not
 * exist or is not a directory).
 */
import { accessSync, constants } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import {
  CollectorChecker,
  DEFAULT_SECRET_ENV_PREFIX,
  formatReport,
  isValid,
  OtelcolFlagError,
  parseOtelcolFlags,
  type ReportFormat,
  readWorkingTree,
  validateSnapshot,
  WorkingTreeError,
} from "../validate/index.js";

export interface ValidateCommandOptions {
  format: ReportFormat;
  /** Warnings fail too. */
  strict: boolean;
  /** `--otelcol <path>` / `--otelcol <name>=<path>`: Collector binaries that also check. */
  otelcol?: string[];
  /** The service's --secret-dir (absolute): `${file:…}` references are allowed under it only. */
  secretDir?: string;
  /** The service's --secret-env-prefix. Default OPAMP_GITOPS_SECRET_. */
  secretEnvPrefix?: string;
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
): Promise<number> {
  const otelcol = otelcolChecker(opts.otelcol);
  if ("problem" in otelcol) {
    out.write(`opamp-gitops validate: ${otelcol.problem}\n`);
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
    secretRefs: {
      envPrefix: opts.secretEnvPrefix ?? DEFAULT_SECRET_ENV_PREFIX,
      ...(opts.secretDir ? { dir: resolve(opts.secretDir) } : {}),
    },
    ...(otelcol.checker ? { collector: otelcol.checker } : {}),
  });
  const rel = relative(process.cwd(), root);
  const pathPrefix =
    rel === "" || rel.startsWith("..") || isAbsolute(rel) ? (rel === "" ? "" : root) : rel;
  const groups = [...read.snapshot.groups.keys()].sort();
  out.write(formatReport(report, opts.format, { pathPrefix, groups, strict: opts.strict }));
  return isValid(report, opts.strict) ? 0 : 1;
}
