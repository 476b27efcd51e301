/**
 * Built-in JSON Schemas compiled when the package is built (scripts/build-schemas.mjs writes
 * ajv's standalone code as `<set>.schemas.cjs` beside this file), so a new process loads
 * validation functions instead of generating and compiling them: the settings schema alone
 * took ~250 ms of serve's start. A module is used only when it was built from the very
 * schema texts the caller holds (their SHA-256 is written into it); otherwise, or when there
 * is none (a source checkout not built), the caller compiles as before.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { ValidateFunction } from "ajv/dist/2020.js";

/** The digest a precompiled module records of the schema texts it was built from. */
export function schemaTextsDigest(texts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const text of texts) hash.update(`${Buffer.byteLength(text)}:`).update(text);
  return hash.digest("hex");
}

/**
 * The validation functions of the precompiled module of `set` next to `moduleUrl` (the
 * caller's import.meta.url), by export name; undefined when there is none or it was built
 * from other texts than `texts`.
 */
export function loadPrecompiled(
  moduleUrl: string,
  set: string,
  texts: readonly string[],
): Record<string, ValidateFunction> | undefined {
  const path = fileURLToPath(new URL(`./${set}.schemas.cjs`, moduleUrl));
  if (!existsSync(path)) return undefined;
  const mod = createRequire(moduleUrl)(path) as Record<string, unknown>;
  if (mod.sourceDigest !== schemaTextsDigest(texts)) return undefined;
  return mod as Record<string, ValidateFunction>;
}
