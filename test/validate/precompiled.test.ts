/**
 * The built-in and status schemas compiled at build time (precompiled.ts,
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
import fc from "fast-check";
import { parse } from "yaml";
import { loadPrecompiled } from "../../src/validate/precompiled.js";
import { builtinSchemas, SCHEMA_FILES, type SchemaName } from "../../src/validate/schemas.js";
import { statusSchemas } from "../../src/validate/status-schemas.js";

const schemasModule = new URL("../../src/validate/schemas.js", import.meta.url).href;
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

describe("precompiled built-in schemas", () => {
  const { ajv, texts } = builtinSchemas();
  const prebuilt = loadPrecompiled(schemasModule, "builtin", texts);

  test("the build wrote them, from these schema files", () => {
    assert.ok(prebuilt, "dist/src/validate/builtin.schemas.cjs is missing or stale: npm run build");
    for (const name of Object.keys(SCHEMA_FILES))
      assert.equal(typeof prebuilt[name.replace(/-/g, "_")], "function", name);
  });

  test("they give ajv's verdict and errors for any document", () => {
    assert.ok(prebuilt);
    for (const name of Object.keys(SCHEMA_FILES) as SchemaName[]) {
      const compiled = ajv.getSchema(SCHEMA_FILES[name]);
      const loaded = prebuilt[name.replace(/-/g, "_")];
      assert.ok(compiled && loaded);
      fc.assert(
        fc.property(documents(SCHEMA_FILES[name]), (doc) => {
          assert.equal(loaded(doc), compiled(doc), name);
          assert.deepEqual(loaded.errors ?? null, compiled.errors ?? null, name);
        }),
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
          const loaded: ValidateFunction | undefined = prebuilt[name.replace(/-/g, "_")];
          assert.ok(compiled && loaded);
          assert.equal(loaded(doc), compiled(doc), `${dir}/${file}`);
          assert.deepEqual(loaded.errors ?? null, compiled.errors ?? null, `${dir}/${file}`);
        }
        n++;
      }
    }
    assert.ok(n > 50, `${n} corpus files compared`);
  });

  test("a module built from other schema texts is not used", () => {
    assert.equal(loadPrecompiled(schemasModule, "builtin", [...texts.slice(1), "{}"]), undefined);
    assert.equal(loadPrecompiled(schemasModule, "none-such", texts), undefined);
  });
});

describe("precompiled status schemas", () => {
  const { ajv, texts, exports } = statusSchemas();
  const prebuilt = loadPrecompiled(schemasModule, "status", texts);

  test("the build wrote them, and they give ajv's verdict and errors for any document", () => {
    assert.ok(prebuilt, "dist/src/validate/status.schemas.cjs is missing or stale: npm run build");
    for (const [kind, id] of Object.entries(exports)) {
      const compiled = ajv.getSchema(id);
      const loaded = prebuilt[kind];
      assert.ok(compiled && loaded, kind);
      fc.assert(
        fc.property(documents(id), (doc) => {
          assert.equal(loaded(doc), compiled(doc), kind);
          assert.deepEqual(loaded.errors ?? null, compiled.errors ?? null, kind);
        }),
        { numRuns: 300 },
      );
    }
  });
});
