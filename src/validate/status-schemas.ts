/**
 * The status branch schemas (schemas/status-{fleet,group,agent}.schema.json), compiled once
 * with ajv (JSON Schema 2020-12) or loaded as the build compiled them (schema-set.ts). The
 * service checks every status file against its schema before writing it; the tests check
 * every file a commit holds.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { SchemaSet } from "./schema-set.js";

export type StatusFileKind = "fleet" | "group" | "agent";

/** One schema violation: where (a JSON pointer into the value) and what. */
export interface StatusSchemaProblem {
  pointer: string;
  message: string;
}

const KINDS = ["fleet", "group", "agent"] as const;

/** The status schemas, by kind. */
export const STATUS_SCHEMAS = new SchemaSet({
  set: "status",
  files: Object.fromEntries(KINDS.map((k) => [k, `status-${k}.schema.json`])),
  newAjv: (source) =>
    new Ajv2020({
      allErrors: true,
      strict: true,
      strictRequired: false,
      allowUnionTypes: true,
      code: { source },
    }),
});

/**
 * Loads (or compiles) the schemas now (idempotent): ~15 ms from the module `npm run build`
 * wrote, ~290 ms of one synchronous call when compiled here. The status writer and each
 * render worker do it when they start, not in their first flush.
 */
export function compileStatusSchemas(): void {
  for (const kind of KINDS) STATUS_SCHEMAS.validator(kind);
}

/** Checks a status file's value against its schema; returns the problems (empty when valid). */
export function validateStatusFile(kind: StatusFileKind, value: unknown): StatusSchemaProblem[] {
  const validate = STATUS_SCHEMAS.validator(kind);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => ({
    pointer: e.instancePath || "/",
    message: `${e.message ?? "is invalid"}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`,
  }));
}
