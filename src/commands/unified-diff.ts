/**
 * Unified diffs of changed files for `opamp-gitops plan` (jsdiff's structured patch, rendered
 * as `git diff` prints it: `--- a/path`, `+++ b/path`, hunks with 3 lines of context).
 *
 * Bounds: a file that is not UTF-8 text (or holds a NUL byte) is reported as binary, with no
 * diff; a diff longer than MAX_DIFF_BYTES is cut at a line boundary and marked truncated, so a
 * generated 10 MB file cannot flood a pull-request comment.
 */
import { structuredPatch } from "diff";
import type { FileChange } from "./plan-model.js";

export const MAX_DIFF_BYTES = 64 * 1024;
/** Files larger than this are not diffed line by line (jsdiff is quadratic at worst). */
const MAX_DIFFED_BYTES = 1024 * 1024;

const decoder = new TextDecoder("utf-8", { fatal: true });

function text(bytes: Uint8Array | undefined): string | undefined {
  if (!bytes) return "";
  if (bytes.length > MAX_DIFFED_BYTES || bytes.includes(0)) return undefined;
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The change from `before` to `after` (undefined = the file does not exist on that side). */
export function fileChange(
  path: string,
  before: Uint8Array | undefined,
  after: Uint8Array | undefined,
): FileChange {
  const change = before === undefined ? "added" : after === undefined ? "removed" : "modified";
  const a = text(before);
  const b = text(after);
  if (a === undefined || b === undefined)
    return { path, change, diff: "", additions: 0, deletions: 0, binary: true, truncated: false };
  const patch = structuredPatch(
    before === undefined ? "/dev/null" : `a/${path}`,
    after === undefined ? "/dev/null" : `b/${path}`,
    a,
    b,
    undefined,
    undefined,
    { context: 3 },
  );
  let additions = 0;
  let deletions = 0;
  const lines = [`--- ${patch.oldFileName}`, `+++ ${patch.newFileName}`];
  for (const h of patch.hunks) {
    lines.push(`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`);
    for (const line of h.lines) {
      if (line.startsWith("+")) additions++;
      else if (line.startsWith("-")) deletions++;
      lines.push(line);
    }
  }
  let diff = `${lines.join("\n")}\n`;
  let truncated = false;
  if (diff.length > MAX_DIFF_BYTES) {
    diff = `${diff.slice(0, diff.lastIndexOf("\n", MAX_DIFF_BYTES) + 1)}`;
    truncated = true;
  }
  return { path, change, diff, additions, deletions, binary: false, truncated };
}
