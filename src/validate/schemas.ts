/**
 * The JSON Schemas of schemas/ (2020-12), compiled once with ajv and reused, and the compiled
 * cache of schemas a repository brings (a group's `config.schema` path). Only src/validate
 * imports ajv.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import type { Finding } from "./model.js";
import { loadPrecompiled } from "./precompiled.js";
import { schemaFindings } from "./schema-errors.js";
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

/** schemas/ of the package, from src/validate (tests) or dist/src/validate (built). */
function schemasDir(): string {
  for (const rel of ["../../schemas/", "../../../schemas/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}group.schema.json`)) return dir;
  }
  throw new Error("schemas/ not found next to the package");
}

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

/** The export name of each built-in schema in the precompiled module (identifiers). */
const EXPORT_NAMES = Object.fromEntries(
  Object.keys(SCHEMA_FILES).map((name) => [name, name.replace(/-/g, "_")]),
) as Record<SchemaName, string>;

/** The built-in schema files' texts, by file name. */
function builtinTexts(): Record<string, string> {
  const dir = schemasDir();
  return Object.fromEntries(
    Object.values(SCHEMA_FILES).map((file) => [file, readFileSync(dir + file, "utf8")]),
  );
}

/**
 * An ajv holding every built-in schema, added (parsed) but not compiled. `source`: keep the
 * generated code, for scripts/build-schemas.mjs to write it as a module (ajv standalone).
 */
export function builtinSchemas(source = false) {
  const ajv = newAjv(true, source);
  const texts = Object.values(builtinTexts());
  for (const text of texts) ajv.addSchema(JSON.parse(text));
  return {
    ajv,
    /** The schema files' texts, in the order loadPrecompiled digests them. */
    texts,
    /** Export name → schema id, as ajv's standaloneCode takes it. */
    exports: Object.fromEntries(
      (Object.keys(SCHEMA_FILES) as SchemaName[]).map((n) => [EXPORT_NAMES[n], SCHEMA_FILES[n]]),
    ),
  };
}

let builtinAjv: ReturnType<typeof newAjv> | undefined;
/** The module scripts/build-schemas.mjs wrote, once looked for (null: none, or stale). */
let prebuilt: Record<string, ValidateFunction> | null | undefined;
const builtins = new Map<SchemaName, ValidateFunction>();

/**
 * The compiled built-in schema `name`: from the module the build wrote (precompiled.ts)
 * when it was built from these very schema files, else compiled here. Every file is added
 * (parsed) once, but each is compiled only when first asked for: a short-lived command
 * (plan, validate) compiles the three it uses, not the settings schema, which is most of
 * the compile time of a new process.
 */
function compiled(name: SchemaName): ValidateFunction {
  let fn = builtins.get(name);
  if (fn) return fn;
  if (prebuilt === undefined)
    prebuilt = loadPrecompiled(import.meta.url, "builtin", Object.values(builtinTexts())) ?? null;
  fn = prebuilt?.[EXPORT_NAMES[name]];
  if (!fn) {
    builtinAjv ??= builtinSchemas().ajv;
    fn = builtinAjv.getSchema(SCHEMA_FILES[name]);
  }
  if (!fn) throw new Error(`schema ${SCHEMA_FILES[name]} did not compile`);
  builtins.set(name, fn);
  return fn;
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
