/**
 * The JSON Schemas of schemas/ (2020-12), compiled once with ajv and reused, and the compiled
 * cache of schemas a repository brings (a group's `config.schema` path). Only src/validate
 * imports ajv.
 */
import { createHash } from "node:crypto";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import type { Finding } from "./model.js";
import { schemaFindings } from "./schema-errors.js";
import { SchemaSet } from "./schema-set.js";
import type { LoadedYaml } from "./yaml.js";

/** Schema files shipped in schemas/, by short name. */
export const SCHEMA_FILES = {
  group: "group.schema.json",
  fleet: "fleet.schema.json",
  otelcol: "otelcol.schema.json",
  "otelcol-bridge": "otelcol-bridge.schema.json",
  settings: "settings.schema.json",
} as const;

export type SchemaName = keyof typeof SCHEMA_FILES;

/** Built-in config schema ids a group may name in `config.schema`. */
export const BUILTIN_CONFIG_SCHEMAS: readonly string[] = ["otelcol", "otelcol-bridge"];

function newAjv(strict: boolean, source = false) {
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    strict,
    allowUnionTypes: true,
    code: { source },
  });
  ajv.addVocabulary(["x-hint"]);
  return ajv;
}

/** The built-in schemas, by export name (an identifier: "otelcol-bridge" is otelcol_bridge). */
export const BUILTIN_SCHEMAS = new SchemaSet({
  set: "builtin",
  files: Object.fromEntries(
    Object.entries(SCHEMA_FILES).map(([name, file]) => [exportName(name as SchemaName), file]),
  ),
  newAjv: (source) => newAjv(true, source),
});

/** A built-in schema's export name in BUILTIN_SCHEMAS. */
export function exportName(name: SchemaName): string {
  return name.replace(/-/g, "_");
}

/**
 * The compiled built-in schema `name`, each compiled (or loaded as the build compiled it)
 * only when first asked for: a short-lived command (plan, validate) needs three, not the
 * settings schema.
 */
function compiled(name: SchemaName): ValidateFunction {
  return BUILTIN_SCHEMAS.validator(exportName(name));
}

export function validateBuiltin(name: SchemaName, doc: LoadedYaml): Finding[] {
  const validate = compiled(name);
  if (validate(doc.value)) return [];
  return schemaFindings(validate.errors ?? [], doc);
}

/** Validates a plain value (no positions) against a built-in schema; returns ajv's errors. */
export function builtinErrors(name: SchemaName, value: unknown) {
  const validate = compiled(name);
  return validate(value) ? [] : (validate.errors ?? []);
}

export type CompiledCustom = { validate: ValidateFunction } | { error: string };

const customCache = new Map<string, CompiledCustom>();
const CUSTOM_CACHE_LIMIT = 256;
let customAjv: ReturnType<typeof newAjv> | undefined;

/**
 * Compiles a JSON Schema (2020-12) a repository brings, once per distinct content. `value`
 * is the parsed schema document; `bytes` its content (the cache key).
 */
export function compileCustomSchema(bytes: Uint8Array, value: unknown): CompiledCustom {
  const key = createHash("sha256").update(bytes).digest("hex");
  const hit = customCache.get(key);
  if (hit) return hit;
  let result: CompiledCustom;
  try {
    if (value === null || (typeof value !== "object" && typeof value !== "boolean"))
      throw new Error("a JSON Schema is an object");
    customAjv ??= newAjv(false);
    // Ids inside user schemas must not collide across repositories or versions.
    const copy = typeof value === "object" ? { ...(value as object) } : value;
    if (typeof copy === "object" && copy !== null) delete (copy as Record<string, unknown>).$id;
    result = { validate: customAjv.compile(copy as object) };
  } catch (err) {
    result = { error: (err as Error).message };
  }
  if (customCache.size >= CUSTOM_CACHE_LIMIT)
    customCache.delete(customCache.keys().next().value as string);
  customCache.set(key, result);
  return result;
}

/** Validates a loaded document with a compiled custom schema. */
export function validateCustom(validate: ValidateFunction, doc: LoadedYaml): Finding[] {
  if (validate(doc.value)) return [];
  return schemaFindings(validate.errors ?? [], doc);
}
