/**
 * How views show one agent attribute, given the redactor: split from views.ts so that a worker
 * thread (the search index's, src/service/search-text-worker.ts) shows attributes exactly as
 * the API does without loading the OpAMP module.
 */
import type { Redactor } from "../redact/index.js";

/** Longest agent text shown, in characters after redaction (longer text ends in "…"). */
export const MAX_VIEW_TEXT = 4096;

/** One agent attribute as views show it with `redactor` (all three layers, cut, a string). */
export function attributeView(redactor: Redactor, key: string, value: string): [string, string] {
  const [k, v] = redactor.attribute(key, value, MAX_VIEW_TEXT);
  return [k, typeof v === "string" ? v : JSON.stringify(v ?? "")];
}
