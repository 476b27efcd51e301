/**
 * Building and ordering findings. Every finding has a file, a 1-based line and column, a
 * severity, a stable code and a message a person can act on.
 */
import type { Finding, Severity } from "./model.js";

/** 1-based position in a file. */
export interface Position {
  line: number;
  column: number;
}

export const START: Position = { line: 1, column: 1 };

export function finding(
  file: string,
  at: Position,
  severity: Severity,
  code: string,
  message: string,
  data?: Record<string, unknown>,
): Finding {
  return {
    file,
    line: at.line,
    column: at.column,
    severity,
    code,
    message,
    ...(data ? { data } : {}),
  };
}

/** Orders findings by file, line, column, then code (stable output for people and diffs). */
export function compareFindings(a: Finding, b: Finding): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.column !== b.column) return a.column - b.column;
  if (a.code !== b.code) return a.code < b.code ? -1 : 1;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

export function countErrors(findings: readonly Finding[]): number {
  let n = 0;
  for (const f of findings) if (f.severity === "error") n++;
  return n;
}

/** A path such as ["service", "pipelines", "traces", "exporters", 1] as people read it. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out || "(document)";
}
