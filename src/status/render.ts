/**
 * Status files as text: each file is checked against its schema (schemas/status-*.schema.json)
 * and written as YAML through src/validate, under a one-line header naming its schema. A file
 * that fails its schema is a bug in the writer: it throws, and nothing is written. Sections
 * equal across files are written as YAML once per thread (section-yaml.ts).
 */
import { type StatusFileKind, validateStatusFile } from "../validate/status-schemas.js";
import { StatusError } from "./errors.js";
import { sectionYaml } from "./section-yaml.js";

export function renderStatusFile(kind: StatusFileKind, value: unknown, path: string): string {
  const problems = validateStatusFile(kind, value);
  if (problems.length > 0)
    throw new StatusError(
      "STATUS_SCHEMA_VIOLATION",
      `status file ${path} does not follow schemas/status-${kind}.schema.json: ${problems
        .slice(0, 3)
        .map((p) => `${p.pointer} ${p.message}`)
        .join("; ")}`,
      { path, problems: problems.slice(0, 10) },
    );
  return `# Written by opamp-gitops (schema: schemas/status-${kind}.schema.json). Do not edit.\n${sectionYaml(value as Record<string, unknown>)}`;
}
