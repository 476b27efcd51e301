// Writes the built-in and status JSON Schemas as ajv standalone code (CommonJS) next to the
// compiled validators, each set with the digest of the schema texts it came from:
// src/validate/precompiled.ts loads them instead of compiling at each process (and render
// worker) start, and only while the texts match.
import { writeFileSync } from "node:fs";
import standaloneCode from "ajv/dist/standalone/index.js";
import { schemaTextsDigest } from "../dist/src/validate/precompiled.js";
import { builtinSchemas } from "../dist/src/validate/schemas.js";
import { statusSchemas } from "../dist/src/validate/status-schemas.js";

for (const [set, { ajv, texts, exports }] of [
  ["builtin", builtinSchemas(true)],
  ["status", statusSchemas(true)],
]) {
  const code = standaloneCode.default(ajv, exports);
  writeFileSync(
    `dist/src/validate/${set}.schemas.cjs`,
    `${code}\nexports.sourceDigest = ${JSON.stringify(schemaTextsDigest(texts))};\n`,
  );
}
