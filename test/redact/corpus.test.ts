/**
 * The redaction corpus through the detector alone (fast; the e2e test runs it through the
 * service): no marker survives redaction of any config or error text, placeholders and plain
 * settings survive, and the corpus holds what issue 13 asks (≥ 50 configs, ≥ 20 errors, each
 * marker once).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Marker, Redactor } from "../../src/redact/index.js";
import { redactConfigFile } from "../../src/status/redact.js";
import { CORPUS_ATTRIBUTES, corpusConfigs, corpusErrors, markersIn } from "./corpus.js";

const R = new Redactor(new Marker(Buffer.alloc(32, 3)));

describe("redaction corpus", () => {
  const configs = corpusConfigs();
  const errors = corpusErrors();
  const all = [
    ...configs.map((c) => c.body.toString("utf8")),
    ...errors,
    ...Object.values(CORPUS_ATTRIBUTES),
  ];

  test("the corpus is as large as promised and every marker is unique", () => {
    assert.ok(configs.length >= 50, `${configs.length} configs`);
    assert.ok(errors.length >= 20, `${errors.length} errors`);
    const markers = all.flatMap(markersIn);
    assert.equal(new Set(markers).size, markers.length, "a marker is used twice");
    for (const c of configs) assert.ok(markersIn(c.body.toString()).length > 0, c.name);
    for (const e of errors) assert.ok(markersIn(e).length > 0, e);
  });

  test("no config keeps a marker; every config still parses and keeps its plain settings", () => {
    for (const c of configs) {
      const entry = redactConfigFile(c.name, c.contentType, c.body, undefined, { redactor: R });
      assert.equal(entry.note, undefined, `${c.name}: ${entry.note}`);
      const text = JSON.stringify(entry.content);
      assert.deepEqual(markersIn(text), [], `${c.name} leaks: ${text}`);
      assert.ok((entry.redacted ?? 0) > 0, c.name);
    }
  });

  test("no error text keeps a marker; the words around the secret stay", () => {
    for (const e of errors) {
      const out = R.text(e, 4096);
      assert.deepEqual(markersIn(out), [], `leaks: ${out}`);
      assert.match(out, /<redacted:[0-9a-f]{6}>/);
    }
    assert.equal(
      R.text(errors[0] as string, 4096).replace(/<redacted:[0-9a-f]{6}>/g, "<m>"),
      'Post "https://ingest.example.com/v1/traces?access_token=<m>&x=1": dial tcp 10.0.0.1:443: connect: connection refused',
    );
  });
});
