/**
 * Turns ajv's errors into findings a person can act on: located at the offending key or
 * value, naming the setting by its path, with the schema's `x-hint` saying what is expected
 * and, for an unknown key, the key that was probably meant.
 *
 * Codes: SCHEMA_UNKNOWN_KEY, SCHEMA_MISSING_KEY, SCHEMA_INVALID_VALUE.
 */
import type { ErrorObject } from "ajv";
import { didYouMean } from "./did-you-mean.js";
import { finding, formatPath } from "./findings.js";
import type { Finding } from "./model.js";
import type { PathSegment } from "./source-map.js";
import type { LoadedYaml } from "./yaml.js";

type SchemaObject = Record<string, unknown>;

/** The instance path of an error as segments; array indexes become numbers. */
export function instancePath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === "") return [];
  const out: PathSegment[] = [];
  let node = data;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      out.push(Number(seg));
      node = node[Number(seg)];
    } else {
      out.push(seg);
      node =
        node !== null && typeof node === "object"
          ? (node as Record<string, unknown>)[seg]
          : undefined;
    }
  }
  return out;
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let node = data;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return node;
}

function show(value: unknown): string {
  if (value === null) return "empty";
  if (typeof value === "string")
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

function hintOf(error: ErrorObject): string | undefined {
  const parent = error.parentSchema as SchemaObject | undefined;
  const hint = parent?.["x-hint"];
  return typeof hint === "string" ? hint : undefined;
}

function genericExpectation(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "type":
      return `of type ${String(p.type).replace(/,/g, " or ")}`;
    case "enum":
      return `one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return JSON.stringify(p.allowedValue);
    default:
      return (error.message ?? "valid").replace(/^must (be )?/, "");
  }
}

/**
 * Findings for ajv `errors` of the document `doc` (its file and positions). `subject` names
 * what was validated in messages (e.g. "group.yaml").
 */
export function schemaFindings(errors: readonly ErrorObject[], doc: LoadedYaml): Finding[] {
  // An anyOf/oneOf failure says it all: drop the failures of its branches.
  const unions = errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf");
  const kept = errors.filter(
    (e) =>
      e.keyword !== "if" &&
      !unions.some(
        (u) =>
          u !== e &&
          e.instancePath === u.instancePath &&
          e.schemaPath.startsWith(`${u.schemaPath}/`),
      ),
  );
  const out: Finding[] = [];
  const seen = new Set<string>();
  for (const error of kept) {
    const path = instancePath(error.instancePath, doc.value);
    const where = formatPath(path);
    const p = error.params as Record<string, unknown>;
    const data = { keyword: error.keyword, path, schemaPath: error.schemaPath };
    let f: Finding;
    if (error.keyword === "additionalProperties") {
      const key = String(p.additionalProperty);
      const props = Object.keys(
        ((error.parentSchema as SchemaObject | undefined)?.properties as SchemaObject) ?? {},
      );
      const meant = didYouMean(key, props);
      const hint = meant === undefined ? "" : `; did you mean "${meant}"?`;
      const allowed = hint || props.length === 0 ? "" : ` (allowed here: ${props.join(", ")})`;
      const inWhere = path.length ? ` in ${where}` : "";
      f = finding(
        doc.file,
        doc.locate([...path, key], { key: true }),
        "error",
        "SCHEMA_UNKNOWN_KEY",
        `unknown key "${key}"${inWhere}${hint}${allowed}`,
        { ...data, key, ...(meant === undefined ? {} : { suggestion: meant }) },
      );
    } else if (error.keyword === "required" || error.keyword === "dependentRequired") {
      const missing = String(p.missingProperty);
      const message =
        error.keyword === "required"
          ? path.length
            ? `${where}: "${missing}" is required`
            : `"${missing}" is required`
          : `${path.length ? `${where}.` : ""}${String(p.property)} needs ${missing} as well`;
      f = finding(doc.file, doc.locate(path), "error", "SCHEMA_MISSING_KEY", message, {
        ...data,
        key: missing,
      });
    } else if (error.keyword === "uniqueItems") {
      const dup = valueAt(doc.value, [...path, Number(p.j)]);
      f = finding(
        doc.file,
        doc.locate([...path, Number(p.i)]),
        "error",
        "SCHEMA_INVALID_VALUE",
        `${where} lists ${show(dup)} twice; list each item once`,
        data,
      );
    } else {
      const value = valueAt(doc.value, path);
      const expected = hintOf(error) ?? genericExpectation(error);
      const subject = path.length ? where : "the file";
      f = finding(
        doc.file,
        doc.locate(path),
        "error",
        "SCHEMA_INVALID_VALUE",
        `${subject} is ${show(value)}; expected ${expected}`,
        data,
      );
    }
    const key = `${f.line}:${f.column}:${f.code}:${f.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(f);
    }
  }
  return out;
}
