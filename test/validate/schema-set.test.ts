/**
 * The built-in and status schemas compiled at build time (schema-set.ts,
 * scripts/build-schemas.mjs): the modules the build wrote are used, they judge every document
 * as ajv compiling the schemas here does (the same errors, in the same order), and a module
 * built from other schema texts is not used.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { ValidateFunction } from "ajv/dist/2020.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { parse } from "yaml";
import { SchemaSet } from "../../src/validate/schema-set.js";
import {
  BUILTIN_SCHEMAS,
  exportName,
  SCHEMA_FILES,
  type SchemaName,
} from "../../src/validate/schemas.js";
import { STATUS_SCHEMAS } from "../../src/validate/status-schemas.js";

const corpus = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../shared/corpus");

/**
 * Documents the schema file `file` is tried on: fields of the right name with values of any
 * shape.
 */
function documents(file: string): fc.Arbitrary<unknown> {
  const schema = JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../../schemas/${file}`, import.meta.url)), "utf8"),
  ) as { properties?: Record<string, unknown> };
  const keys = Object.keys(schema.properties ?? {});
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.dictionary(fc.constantFrom(...keys, "extra"), fc.jsonValue({ maxDepth: 2 })),
  );
  return fc.oneof(fc.dictionary(fc.constantFrom(...keys, "unknownKey"), value), fc.jsonValue());
}

/** Asserts the built and the freshly compiled validator judge `doc` alike. */
function same(loaded: ValidateFunction, compiled: ValidateFunction, doc: unknown, what: string) {
  assert.equal(loaded(doc), compiled(doc), what);
  assert.deepEqual(loaded.errors ?? null, compiled.errors ?? null, what);
}

describe("precompiled built-in schemas", () => {
  const ajv = BUILTIN_SCHEMAS.ajv();
  const prebuilt = BUILTIN_SCHEMAS.prebuilt();

  test("the build wrote them, from these schema files, and they are used", () => {
    assert.ok(prebuilt, "dist/src/validate/builtin.schemas.cjs is missing or stale: npm run build");
    for (const name of Object.keys(SCHEMA_FILES) as SchemaName[]) {
      assert.equal(typeof prebuilt[exportName(name)], "function", name);
      assert.equal(BUILTIN_SCHEMAS.validator(exportName(name)), prebuilt[exportName(name)]);
    }
  });

  test("they give ajv's verdict and errors for any document", () => {
    assert.ok(prebuilt);
    for (const name of Object.keys(SCHEMA_FILES) as SchemaName[]) {
      const compiled = ajv.getSchema(SCHEMA_FILES[name]);
      const loaded = prebuilt[exportName(name)];
      assert.ok(compiled && loaded);
      fc.assert(
        fc.property(documents(SCHEMA_FILES[name]), (doc) => same(loaded, compiled, doc, name)),
        { numRuns: 300 },
      );
    }
  });

  test("real Collector configs get the same errors (../shared/corpus)", (t) => {
    if (!existsSync(join(corpus, "otelcol"))) return t.skip("../shared/corpus is absent");
    assert.ok(prebuilt);
    let n = 0;
    for (const dir of ["otelcol", "otelcol-invalid", "otelcol-unknown-components"]) {
      for (const file of readdirSync(join(corpus, dir)).filter((f) => /\.ya?ml$/.test(f))) {
        let doc: unknown;
        try {
          doc = parse(readFileSync(join(corpus, dir, file), "utf8"));
        } catch {
          continue; // not YAML at all: the schema never sees it
        }
        for (const name of ["otelcol", "otelcol-bridge"] as const) {
          const compiled = ajv.getSchema(SCHEMA_FILES[name]);
          const loaded: ValidateFunction | undefined = prebuilt[exportName(name)];
          assert.ok(compiled && loaded);
          same(loaded, compiled, doc, `${dir}/${file}`);
        }
        n++;
      }
    }
    assert.ok(n > 50, `${n} corpus files compared`);
  });

  test("a module built from other schema texts is not used; the set compiles instead", () => {
    const newAjv = (source: boolean) =>
      new Ajv2020({ allErrors: true, strict: false, code: { source } });
    // Same module name, fewer files than it was built from: the digest differs.
    const fewer = new SchemaSet({ set: "builtin", files: { group: "group.schema.json" }, newAjv });
    assert.equal(fewer.prebuilt(), undefined);
    const group = fewer.validator("group");
    assert.notEqual(group, prebuilt?.group, "compiled here, not the built one");
    assert.equal(group({}), false, "group.yaml needs a selector");
    const none = new SchemaSet({ set: "none-such", files: { group: "group.schema.json" }, newAjv });
    assert.equal(none.prebuilt(), undefined);
    assert.throws(() => none.validator("fleet"), /no schema named fleet/);
  });
});

describe("precompiled status schemas", () => {
  const ajv = STATUS_SCHEMAS.ajv();
  const prebuilt = STATUS_SCHEMAS.prebuilt();

  test("the build wrote them, and they give ajv's verdict and errors for any document", () => {
    assert.ok(prebuilt, "dist/src/validate/status.schemas.cjs is missing or stale: npm run build");
    for (const kind of ["fleet", "group", "agent"]) {
      const file = `status-${kind}.schema.json`;
      const compiled = ajv.getSchema(file);
      const loaded: ValidateFunction | undefined = prebuilt[kind];
      assert.ok(compiled && loaded, kind);
      assert.equal(STATUS_SCHEMAS.validator(kind), loaded, `${kind}: the built one is used`);
      fc.assert(
        fc.property(documents(file), (doc) => same(loaded, compiled, doc, kind)),
        { numRuns: 300 },
      );
    }
  });
});
