/**
 * A set of the package's JSON Schemas (schemas/), validated with ajv: compiled when the
 * package is built (scripts/build-schemas.mjs writes ajv's standalone code as
 * `<set>.schemas.cjs` beside this file), so a new process or render worker loads validation
 * functions instead of generating and compiling them (the settings schema alone took ~250 ms
 * of serve's start, the status schemas ~290 ms of each render worker's). That module is used
 * only when it was built from the very schema texts read now (their SHA-256 is written into
 * it); otherwise, or when there is none (a source checkout not built), each schema is
 * compiled here on first use. Only src/validate imports ajv.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Ajv2020, ValidateFunction } from "ajv/dist/2020.js";
import { packageFile } from "../package-files.js";

export interface SchemaSetOptions {
  /** Names the built module: `<set>.schemas.cjs`. */
  set: string;
  /** Export name (an identifier) → file name under schemas/, which is also the schema's $id. */
  files: Readonly<Record<string, string>>;
  /** A new ajv with the set's options; `source`: keep the generated code (for the build). */
  newAjv: (source: boolean) => Ajv2020;
}

/** schemas/ of the package, from dist/src (built) or src (sources run unbuilt). */
function schemasDir(probe: string): string {
  for (const rel of ["../../schemas/", "../schemas/"]) {
    const dir = fileURLToPath(packageFile(rel));
    if (existsSync(dir + probe)) return dir;
  }
  throw new Error(`schemas/${probe} not found next to the package`);
}

/** The digest a built module records of the schema texts it came from. */
function digestOf(texts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const text of texts) hash.update(`${Buffer.byteLength(text)}:`).update(text);
  return hash.digest("hex");
}

/** Validators of one set of schemas. Not thread-safe beyond JS's own (sync, idempotent). */
export class SchemaSet {
  readonly #options: SchemaSetOptions;
  #texts: string[] | undefined;
  /** The built module, once looked for (null: none, or built from other texts). */
  #prebuilt: Record<string, ValidateFunction> | null | undefined;
  #ajv: Ajv2020 | undefined;
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(options: SchemaSetOptions) {
    this.#options = options;
  }

  /** Where the build writes this set's module (next to this file). */
  get modulePath(): string {
    return fileURLToPath(packageFile(`validate/${this.#options.set}.schemas.cjs`));
  }

  /** The schema files' texts, in the order of `files` (read once). */
  texts(): readonly string[] {
    if (!this.#texts) {
      const names = Object.values(this.#options.files);
      const dir = schemasDir(names[0] ?? "");
      this.#texts = names.map((file) => readFileSync(dir + file, "utf8"));
    }
    return this.#texts;
  }

  /** A new ajv holding every schema of the set, added (parsed) but not compiled. */
  ajv(source = false): Ajv2020 {
    const ajv = this.#options.newAjv(source);
    for (const text of this.texts()) ajv.addSchema(JSON.parse(text));
    return ajv;
  }

  /** The built module's validators when it matches the texts, else undefined. */
  prebuilt(): Record<string, ValidateFunction> | undefined {
    if (this.#prebuilt === undefined) {
      const path = this.modulePath;
      const mod = existsSync(path)
        ? (createRequire(import.meta.url)(path) as Record<string, unknown>)
        : undefined;
      this.#prebuilt =
        mod?.sourceDigest === digestOf(this.texts())
          ? (mod as Record<string, ValidateFunction>)
          : null;
    }
    return this.#prebuilt ?? undefined;
  }

  /** The validator exported as `name`: the built one, else compiled here once. */
  validator(name: string): ValidateFunction {
    let fn = this.#validators.get(name);
    if (fn) return fn;
    const file = this.#options.files[name];
    if (file === undefined) throw new Error(`no schema named ${name} in ${this.#options.set}`);
    fn = this.prebuilt()?.[name];
    if (!fn) {
      this.#ajv ??= this.ajv();
      fn = this.#ajv.getSchema(file);
    }
    if (!fn) throw new Error(`schema ${file} did not compile`);
    this.#validators.set(name, fn);
    return fn;
  }

  /** The module the build writes: ajv's standalone code and the texts' digest (CommonJS). */
  async standaloneModule(): Promise<string> {
    // Imported here: only the build writes modules.
    const standalone = await import("ajv/dist/standalone/index.js");
    const code = standalone.default.default(this.ajv(true), { ...this.#options.files });
    return `${code}\nexports.sourceDigest = ${JSON.stringify(digestOf(this.texts()))};\n`;
  }
}
