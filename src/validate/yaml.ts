/**
 * Loading a YAML (or JSON) file a user wrote, with source positions and limits (DESIGN §2):
 * strict UTF-8, a size limit, a single document, unique keys, a bounded number of aliases and
 * a bounded alias expansion (an alias bomb is refused before anything is expanded), bounded
 * nesting. Every problem becomes a Finding with file, line, column and a stable code:
 *
 *   YAML_FILE_TOO_LARGE, YAML_INVALID_UTF8, YAML_MULTIPLE_DOCUMENTS, YAML_DUPLICATE_KEY,
 *   YAML_TAB_INDENT, YAML_SYNTAX, YAML_TOO_MANY_ALIASES, YAML_ALIAS_EXPANSION,
 *   YAML_RECURSIVE_ALIAS, YAML_TOO_DEEP (errors); YAML_WARNING (warnings).
 *
 * This module and src/validate/schemas are the only users of the `yaml` package.
 */
import { type Document, type Node, parseDocument } from "yaml";
import { finding, type Position, START } from "./findings.js";
import type { Finding } from "./model.js";
import { LineIndex, offsetOf, type PathSegment } from "./source-map.js";
import { decodeUtf8 } from "./utf8.js";
import { findDuplicates, walkAliases } from "./yaml-walk.js";

export interface YamlLimits {
  /** Largest file accepted, in bytes. Default 1 MiB. */
  maxBytes: number;
  /** Largest number of alias nodes (`*name`) in one file. Default 1,000. */
  maxAliases: number;
  /** Most nodes that aliases may add when expanded, over the whole file. Default 100,000. */
  maxAliasExpansion: number;
  /** Deepest nesting of mappings and sequences. Default 200. */
  maxDepth: number;
}

export const DEFAULT_YAML_LIMITS: Readonly<YamlLimits> = Object.freeze({
  maxBytes: 1024 * 1024,
  maxAliases: 1000,
  maxAliasExpansion: 100_000,
  maxDepth: 200,
});

/** A loaded file: its plain value and the way back from a path to a line and column. */
export interface LoadedYaml {
  file: string;
  /** JSON-compatible value: objects, arrays, strings, numbers, booleans, null. */
  value: unknown;
  /**
   * Line and column of the node at `path`. With `key`, the position of the mapping key the
   * last segment names (for "unknown key" findings). A path that leaves the document gives
   * the deepest node on it.
   */
  locate(path: readonly PathSegment[], options?: { key?: boolean }): Position;
  /** Line and column of a character offset of the decoded text. */
  offsetPosition(offset: number): Position;
}

export interface LoadResult {
  /** Present when the file has no error (warnings may still be in `findings`). */
  yaml?: LoadedYaml;
  findings: Finding[];
}

const MiB = 1024 * 1024;

function describeBytes(n: number): string {
  return n >= MiB
    ? `${(n / MiB).toFixed(1)} MiB`
    : n >= 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${n} bytes`;
}

/** Loads `bytes` read from `file` (a repository-relative path, used in findings). */
export function loadYaml(
  bytes: Uint8Array,
  file: string,
  limits: Partial<YamlLimits> = {},
): LoadResult {
  const lim = { ...DEFAULT_YAML_LIMITS, ...limits };
  if (bytes.length > lim.maxBytes) {
    return {
      findings: [
        finding(
          file,
          START,
          "error",
          "YAML_FILE_TOO_LARGE",
          `the file is ${describeBytes(bytes.length)} (${bytes.length} bytes); the limit is ${describeBytes(lim.maxBytes)}: split it or remove what is not needed`,
          { size: bytes.length, limit: lim.maxBytes },
        ),
      ],
    };
  }
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) {
    const hex = decoded.byte.toString(16).toUpperCase().padStart(2, "0");
    return {
      findings: [
        finding(
          file,
          decoded,
          "error",
          "YAML_INVALID_UTF8",
          `the file is not valid UTF-8: byte 0x${hex} at offset ${decoded.offset} does not start a valid character; save the file as UTF-8`,
          { offset: decoded.offset, byte: decoded.byte },
        ),
      ],
    };
  }
  return loadYamlText(decoded.text, file, lim);
}

/** Loads already-decoded text (the size limit applies to its UTF-8 length). */
export function loadYamlText(
  text: string,
  file: string,
  limits: Partial<YamlLimits> = {},
): LoadResult {
  const lim = { ...DEFAULT_YAML_LIMITS, ...limits };
  const lines = new LineIndex(text);
  const at = (offset: number) => lines.position(offset);
  let doc: Document.Parsed;
  try {
    // Unique keys are checked below in linear time; the parser's check is quadratic.
    doc = parseDocument(text, {
      uniqueKeys: false,
      merge: true,
      prettyErrors: false,
      strict: true,
    });
  } catch (err) {
    // The parser recurses; absurd nesting can exhaust the stack.
    return {
      findings: [
        finding(
          file,
          START,
          "error",
          "YAML_TOO_DEEP",
          `the file cannot be parsed: ${(err as Error).message}`,
        ),
      ],
    };
  }
  const findings: Finding[] = [];
  for (const err of doc.errors)
    findings.push(parseErrorFinding(file, err.code, err.message, err.pos[0], at));
  for (const dup of findDuplicates(doc)) {
    findings.push(
      finding(
        file,
        at(dup.second),
        "error",
        "YAML_DUPLICATE_KEY",
        `key "${dup.key}" appears twice in the same mapping (first at line ${at(dup.first).line}); remove or merge one of them`,
        { key: dup.key, firstLine: at(dup.first).line },
      ),
    );
  }
  for (const w of doc.warnings)
    findings.push(
      finding(file, at(w.pos[0]), "warning", "YAML_WARNING", w.message, { yamlCode: w.code }),
    );
  if (findings.some((f) => f.severity === "error")) return { findings };

  const walk = walkAliases(doc.contents as Node | null, lim);
  if (walk.problem) {
    const p = walk.problem;
    findings.push(finding(file, at(p.offset), "error", p.code, p.message, p.data));
    return { findings };
  }
  let value: unknown;
  try {
    // Aliases were counted and bounded above; yaml's own guard stays on as a backstop.
    value = doc.toJS({ maxAliasCount: Math.max(100, lim.maxAliases * 10) });
  } catch (err) {
    findings.push(
      finding(
        file,
        START,
        "error",
        "YAML_ALIAS_EXPANSION",
        `the aliases of this file cannot be expanded: ${(err as Error).message}`,
      ),
    );
    return { findings };
  }
  const root = doc.contents as Node | null;
  const targets = walk.targets;
  return {
    yaml: {
      file,
      value: value ?? null,
      locate: (path, options) => at(offsetOf(root, path, targets, options?.key === true)),
      offsetPosition: at,
    },
    findings,
  };
}

function parseErrorFinding(
  file: string,
  code: string,
  message: string,
  offset: number,
  at: (offset: number) => Position,
): Finding {
  const pos = at(offset);
  switch (code) {
    case "MULTIPLE_DOCS":
      return finding(
        file,
        pos,
        "error",
        "YAML_MULTIPLE_DOCUMENTS",
        `the file holds more than one YAML document (a second one starts at line ${pos.line}); a file must hold a single document: split it into several files`,
      );
    case "TAB_AS_INDENT":
      return finding(
        file,
        pos,
        "error",
        "YAML_TAB_INDENT",
        "a tab character is used for indentation; YAML indents with spaces only: replace the tab with spaces",
      );
    default:
      return finding(file, pos, "error", "YAML_SYNTAX", `YAML syntax error: ${message}`, {
        yamlCode: code,
      });
  }
}
