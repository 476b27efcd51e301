/**
 * The status branch schemas (schemas/status-{fleet,group,agent}.schema.json), compiled once
 * with ajv (JSON Schema 2020-12). The service checks every status file against its schema
 * before writing it; the tests check every file a commit holds.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

export type StatusFileKind = "fleet" | "group" | "agent";

/** One schema violation: where (a JSON pointer into the value) and what. */
export interface StatusSchemaProblem {
  pointer: string;
  message: string;
}

let compiled: Map<StatusFileKind, ValidateFunction> | undefined;

function schemasDir(): string {
  for (const rel of ["../../schemas/", "../../../schemas/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}status-agent.schema.json`)) return dir;
  }
  throw new Error("schemas/status-*.schema.json not found next to the package");
}

function validator(kind: StatusFileKind): ValidateFunction {
  if (!compiled) {
    const dir = schemasDir();
    const ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
    });
    compiled = new Map();
    for (const k of ["fleet", "group", "agent"] as const)
      compiled.set(
        k,
        ajv.compile(JSON.parse(readFileSync(`${dir}status-${k}.schema.json`, "utf8"))),
      );
  }
  return compiled.get(kind) as ValidateFunction;
}

/**
 * Compiles the schemas now (idempotent). Compiling costs tens of milliseconds of one
 * synchronous call: the status writer does it when it starts, not in its first flush.
 */
export function compileStatusSchemas(): void {
  validator("agent");
}

/** Checks a status file's value against its schema; returns the problems (empty when valid). */
export function validateStatusFile(kind: StatusFileKind, value: unknown): StatusSchemaProblem[] {
  const validate = validator(kind);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => ({
    pointer: e.instancePath || "/",
    message: `${e.message ?? "is invalid"}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`,
  }));
}
