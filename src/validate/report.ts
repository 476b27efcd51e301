/**
 * Formats a ValidationReport for people and machines:
 *
 * - text: one line per finding, errors first, then warnings, then a summary:
 *     groups/edge/collector.yaml:14:7 OTELCOL_UNDEFINED_COMPONENT pipeline traces uses ...
 *     groups/edge/collector.yaml:30:3 warning OTELCOL_UNUSED_COMPONENT exporter "debug" ...
 *     2 groups, 1 error, 1 warning: invalid
 * - json: a stable object for scripts (see JsonReport).
 * - github: GitHub Actions workflow commands (`::error file=...,line=...,col=...,title=CODE::`),
 *   which annotate the pull request, followed by the text summary.
 */
import type { Finding, ValidationReport } from "./model.js";

export type ReportFormat = "text" | "json" | "github";
export const REPORT_FORMATS: readonly ReportFormat[] = ["text", "json", "github"];

export interface ReportOptions {
  /** Prefix for file paths in text and github output (the validated folder, relative to cwd). */
  pathPrefix?: string;
  /** Names of the groups found, for the summary and the json output. */
  groups?: readonly string[];
  /** Whether warnings count as failure (--strict), for the summary and `valid`. */
  strict?: boolean;
}

/** The json output. `version` changes only when the shape changes incompatibly. */
export interface JsonReport {
  version: 1;
  valid: boolean;
  errors: number;
  warnings: number;
  groups: string[];
  findings: Array<
    Pick<Finding, "file" | "line" | "column" | "severity" | "code" | "message"> & {
      data?: Record<string, unknown>;
    }
  >;
}

function ordered(report: ValidationReport): Finding[] {
  return [
    ...report.findings.filter((f) => f.severity === "error"),
    ...report.findings.filter((f) => f.severity !== "error"),
  ];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function isValid(report: ValidationReport, strict = false): boolean {
  return report.errors === 0 && (!strict || report.warnings === 0);
}

function summary(report: ValidationReport, options: ReportOptions): string {
  const groups = options.groups ? `${plural(options.groups.length, "group")}, ` : "";
  const verdict = isValid(report, options.strict)
    ? "valid"
    : report.errors > 0
      ? "invalid"
      : "invalid (--strict: warnings fail)";
  return `${groups}${plural(report.errors, "error")}, ${plural(report.warnings, "warning")}: ${verdict}`;
}

function path(file: string, options: ReportOptions): string {
  return options.pathPrefix ? `${options.pathPrefix.replace(/\/+$/, "")}/${file}` : file;
}

function text(report: ValidationReport, options: ReportOptions): string {
  const lines = ordered(report).map(
    (f) =>
      `${path(f.file, options)}:${f.line}:${f.column} ${f.severity === "error" ? "" : "warning "}${f.code} ${f.message}`,
  );
  lines.push(summary(report, options));
  return `${lines.join("\n")}\n`;
}

function json(report: ValidationReport, options: ReportOptions): string {
  const out: JsonReport = {
    version: 1,
    valid: isValid(report, options.strict),
    errors: report.errors,
    warnings: report.warnings,
    groups: [...(options.groups ?? [])],
    findings: ordered(report).map((f) => ({
      file: f.file,
      line: f.line,
      column: f.column,
      severity: f.severity,
      code: f.code,
      message: f.message,
      ...(f.data ? { data: f.data } : {}),
    })),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Escaping of workflow command data and properties (GitHub's toolkit rules). */
function escapeData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** One finding as a workflow annotation (`::error file=…,line=…,col=…,title=CODE::message`). */
export function githubAnnotation(f: Finding, file: string = f.file): string {
  const props = [
    `file=${escapeProperty(file)}`,
    `line=${f.line}`,
    `col=${f.column}`,
    `title=${escapeProperty(f.code)}`,
  ].join(",");
  return `::${f.severity === "error" ? "error" : "warning"} ${props}::${escapeData(f.message)}`;
}

function github(report: ValidationReport, options: ReportOptions): string {
  const lines = ordered(report).map((f) => githubAnnotation(f, path(f.file, options)));
  lines.push(summary(report, options));
  return `${lines.join("\n")}\n`;
}

export function formatReport(
  report: ValidationReport,
  format: ReportFormat,
  options: ReportOptions = {},
): string {
  switch (format) {
    case "json":
      return json(report, options);
    case "github":
      return github(report, options);
    default:
      return text(report, options);
  }
}
