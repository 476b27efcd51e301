/**
 * A group's `config.schema`: a built-in id (otelcol, otelcol-bridge) or the path of a JSON
 * Schema in the repository, relative to the watched root. The path must stay inside the
 * repository: no absolute path, no backslash, no `.` or `..` segment, no empty segment
 * (CONFIG_SCHEMA_PATH). A missing file is CONFIG_SCHEMA_NOT_FOUND, one the reader refuses
 * (a symbolic link) CONFIG_SCHEMA_UNREADABLE; a file that does not
 * load or compile as a 2020-12 JSON Schema is CONFIG_SCHEMA_INVALID. Each schema file is
 * read and compiled once per snapshot, and compiled once per distinct content overall.
 */
import { createHash } from "node:crypto";
import type { ValidateFunction } from "ajv";
import { finding, START } from "./findings.js";
import type { Finding, RepositorySnapshot } from "./model.js";
import { BUILTIN_CONFIG_SCHEMAS, compileCustomSchema } from "./schemas.js";
import { loadYaml } from "./yaml.js";

/** Why `path` is not a safe repository-relative path, or undefined when it is. */
export function unsafePathReason(path: string): string | undefined {
  if (path.startsWith("/")) return "it is absolute; give a path relative to the repository root";
  if (/^[A-Za-z]:/.test(path))
    return "it is a drive path; give a path relative to the repository root";
  if (path.includes("\\")) return 'it contains "\\"; use "/" between folders';
  if (path.includes("\0")) return "it contains a NUL character";
  const segments = path.split("/");
  if (segments.includes("..")) return 'it contains ".." and could leave the repository';
  if (segments.includes(".")) return 'it contains "." segments; write the normalized path';
  if (segments.includes("")) return 'it has an empty segment ("//" or a trailing "/")';
  return undefined;
}

export interface LoadedSchema {
  path: string;
  /** SHA-256 of the file, for caches that depend on it. */
  hash?: string;
  validate?: ValidateFunction;
  /** Problems of the schema file itself (located in it). */
  findings: Finding[];
  /** Why it cannot be used, when it cannot. */
  problem?: { code: string; message: string };
}

/** Loads and compiles repository schemas, each path once per snapshot. */
export class SchemaLoader {
  readonly #snapshot: RepositorySnapshot;
  readonly #loads = new Map<string, Promise<LoadedSchema>>();

  constructor(snapshot: RepositorySnapshot) {
    this.#snapshot = snapshot;
  }

  load(path: string): Promise<LoadedSchema> {
    let p = this.#loads.get(path);
    if (!p) {
      p = this.#load(path);
      this.#loads.set(path, p);
    }
    return p;
  }

  /** Every schema file's own findings, once each. */
  async findings(): Promise<Finding[]> {
    const all = await Promise.all(this.#loads.values());
    return all.flatMap((s) => s.findings);
  }

  async #load(path: string): Promise<LoadedSchema> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.#snapshot.readFile(path);
    } catch (err) {
      return {
        path,
        findings: [],
        problem: {
          code: "CONFIG_SCHEMA_UNREADABLE",
          message: `config.schema "${path}" cannot be read: ${(err as Error).message}`,
        },
      };
    }
    if (!bytes)
      return {
        path,
        findings: [],
        problem: {
          code: "CONFIG_SCHEMA_NOT_FOUND",
          message: `config.schema names "${path}", which is not in the repository: add it, fix the path, or use a built-in schema (${BUILTIN_CONFIG_SCHEMAS.join(", ")})`,
        },
      };
    const hash = createHash("sha256").update(bytes).digest("hex");
    const loaded = loadYaml(bytes, path);
    if (!loaded.yaml)
      return {
        path,
        hash,
        findings: loaded.findings,
        problem: {
          code: "CONFIG_SCHEMA_INVALID",
          message: `the schema ${path} cannot be read (see the errors reported in it)`,
        },
      };
    const compiled = compileCustomSchema(bytes, loaded.yaml.value);
    if ("error" in compiled) {
      const f = finding(
        path,
        START,
        "error",
        "CONFIG_SCHEMA_INVALID",
        `${path} is not a usable JSON Schema (2020-12): ${compiled.error}`,
      );
      return {
        path,
        hash,
        findings: [...loaded.findings, f],
        problem: {
          code: "CONFIG_SCHEMA_INVALID",
          message: `the schema ${path} is not a usable JSON Schema (see the error reported in it)`,
        },
      };
    }
    return { path, hash, validate: compiled.validate, findings: loaded.findings };
  }
}
