/**
 * `opamp-gitops validate [<dir>] [--format text|json|github] [--strict]`: validates a working
 * tree of the fleet repository, as a pull-request check does (DESIGN §2, §6).
 *
 * Exit codes: 0 valid; 1 errors (or warnings, with --strict); 2 usage (the folder does not
 * exist or is not a directory).
 */
import { isAbsolute, relative, resolve } from "node:path";
import {
  formatReport,
  isValid,
  type ReportFormat,
  readWorkingTree,
  validateSnapshot,
  WorkingTreeError,
} from "../validate/index.js";

export interface ValidateCommandOptions {
  format: ReportFormat;
  /** Warnings fail too. */
  strict: boolean;
}

/** Validates the working tree at `dir`, writes the report to `out`, returns the exit code. */
export async function runValidate(
  dir: string,
  opts: ValidateCommandOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
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
  const report = await validateSnapshot(read.snapshot, { findings: read.findings });
  const rel = relative(process.cwd(), root);
  const pathPrefix =
    rel === "" || rel.startsWith("..") || isAbsolute(rel) ? (rel === "" ? "" : root) : rel;
  const groups = [...read.snapshot.groups.keys()].sort();
  out.write(formatReport(report, opts.format, { pathPrefix, groups, strict: opts.strict }));
  return isValid(report, opts.strict) ? 0 : 1;
}
