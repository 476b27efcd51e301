/**
 * Entry point of the search index's worker thread (search-texts.ts): answers each
 * `{ id, key, subjects }` with `{ id, texts }`, one text per subject, in order.
 */
import { parentPort } from "node:worker_threads";
import { attributeView } from "../api/view-attribute.js";
import { Marker, Redactor } from "../redact/index.js";
import { type SearchSubject, searchTextOf } from "./search-text.js";

/** The redactor of the last key seen (an index is built with one key). */
let keyed: { key: string; redactor: Redactor } | undefined;

parentPort?.on("message", (m: { id: number; key: Uint8Array; subjects: SearchSubject[] }) => {
  const hex = Buffer.from(m.key).toString("hex");
  if (keyed?.key !== hex) keyed = { key: hex, redactor: new Redactor(new Marker(m.key)) };
  const redactor = keyed.redactor;
  parentPort?.postMessage({
    id: m.id,
    texts: m.subjects.map((s) => searchTextOf(s, (k, v) => attributeView(redactor, k, v))),
  });
});
