/**
 * The status branch schemas (schemas/status-{fleet,group,agent}.schema.json), compiled once
 * with ajv (JSON Schema 2020-12), or loaded as compiled by the build (precompiled.ts). The service checks every status file against its schema
 * before writing it; the tests check every file a commit holds.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { loadPrecompiled } from "./precompiled.js";

export type StatusFileKind = "fleet" | "group" | "agent";

/** One schema violation: where (a JSON pointer into the value) and what. */
export interface StatusSchemaProblem {
  pointer: string;
  message: string;
}

const KINDS = ["fleet", "group", "agent"] as const;

let compiled: Map<StatusFileKind, ValidateFunction> | undefined;

function schemasDir(): string {
  for (const rel of ["../../schemas/", "../../../schemas/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}status-agent.schema.json`)) return dir;
  }
  throw new Error("schemas/status-*.schema.json not found next to the package");
}

/** The status schema files' texts, fleet, group, agent. */
function statusTexts(): string[] {
  const dir = schemasDir();
  return KINDS.map((k) => readFileSync(`${dir}status-${k}.schema.json`, "utf8"));
}

/**
 * An ajv holding the three status schemas, added (parsed) but not compiled. `source`: keep
 * the generated code, for scripts/build-schemas.mjs to write it as a module (precompiled.ts).
 */
export function statusSchemas(source = false) {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
    code: { source },
  });
  const texts = statusTexts();
  for (const text of texts) ajv.addSchema(JSON.parse(text));
  return {
    ajv,
    /** The schema files' texts, in the order loadPrecompiled digests them. */
    texts,
    /** Export name → schema id, as ajv's standaloneCode takes it. */
    exports: Object.fromEntries(KINDS.map((k) => [k, `status-${k}.schema.json`])),
  };
}

function validator(kind: StatusFileKind): ValidateFunction {
  if (!compiled) {
    // Built by `npm run build` (~290 ms of compiling saved per process and render worker).
    const prebuilt = loadPrecompiled(import.meta.url, "status", statusTexts());
    let ajv: Ajv2020 | undefined;
    compiled = new Map();
    for (const k of KINDS) {
      let fn = prebuilt?.[k];
      if (!fn) {
        ajv ??= statusSchemas().ajv;
        fn = ajv.getSchema(`status-${k}.schema.json`);
      }
      if (!fn) throw new Error(`schema status-${k}.schema.json did not compile`);
      compiled.set(k, fn);
    }
  }
  return compiled.get(kind) as ValidateFunction;
}

/**
 * Loads (or compiles) the schemas now (idempotent): ~15 ms from the module `npm run build`
 * wrote, ~290 ms of one synchronous call when compiled here. The status writer and each
 * render worker do it when they start, not in their first flush.
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
