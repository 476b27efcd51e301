/**
 * Fixture repositories for validation tests: real files in a temporary folder (no mocks),
 * validated the way `opamp-gitops validate` does.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after } from "node:test";
import {
  type Finding,
  readWorkingTree,
  type ValidationReport,
  validateSnapshot,
} from "../../src/validate/index.js";

const made: string[] = [];
after(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** File content, or a symbolic link to create. */
export type Entry = string | Uint8Array | { symlink: string };

/** Writes `files` (repository-relative paths) into a new temporary folder. */
export async function fixtureRepo(files: Record<string, Entry>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "opamp-gitops-validate-"));
  made.push(root);
  for (const [path, content] of Object.entries(files)) {
    const abs = join(root, path);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof content === "object" && "symlink" in content) await symlink(content.symlink, abs);
    else await writeFile(abs, content);
  }
  return root;
}

/** Reads and validates a working tree, as the validate command does. */
export async function validateDir(root: string): Promise<ValidationReport> {
  const read = await readWorkingTree(root);
  return validateSnapshot(read.snapshot, { findings: read.findings });
}

/** Validates a repository made of `files`. */
export async function validateFiles(files: Record<string, Entry>): Promise<ValidationReport> {
  return validateDir(await fixtureRepo(files));
}

/** A minimal valid group.yaml. */
export const GROUP_YAML = "selector:\n  match:\n    service.name: otelcol-contrib\n";

/** A small valid Collector configuration. */
export const COLLECTOR_YAML = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
processors:
  batch:
exporters:
  otlp/tempo:
    endpoint: tempo:4317
    headers:
      authorization: \${env:TEMPO_TOKEN}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/tempo]
`;

/** The one finding with `code` (fails when there is none or several). */
export function only(report: ValidationReport, code: string): Finding {
  const hits = report.findings.filter((f) => f.code === code);
  assert.equal(
    hits.length,
    1,
    `expected one ${code}, got ${JSON.stringify(report.findings, null, 2)}`,
  );
  return hits[0] as Finding;
}

/** Asserts a finding as a user sees it: file, line, column, severity, code, message fragment. */
export function assertFinding(
  f: Finding | undefined,
  expected: {
    file: string;
    line: number;
    column: number;
    severity?: "error" | "warning";
    code: string;
    message: RegExp | string;
  },
): void {
  assert.ok(f, `expected a finding ${expected.code}`);
  assert.equal(f.code, expected.code);
  assert.equal(f.file, expected.file);
  assert.equal(
    `${f.line}:${f.column}`,
    `${expected.line}:${expected.column}`,
    `position of ${f.code}: ${f.message}`,
  );
  if (expected.severity) assert.equal(f.severity, expected.severity);
  if (typeof expected.message === "string")
    assert.ok(f.message.includes(expected.message), `message: ${f.message}`);
  else assert.match(f.message, expected.message);
}

export function codes(report: ValidationReport): string[] {
  return report.findings.map((f) => f.code);
}
