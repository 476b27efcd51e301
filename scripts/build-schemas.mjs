// Writes the built-in JSON Schemas as ajv standalone code (CommonJS) next to the compiled
// validators, with the digest of the schema texts they came from: src/validate/precompiled.ts
// loads them instead of compiling at each process start, and only while the texts match.
import { writeFileSync } from "node:fs";
import standaloneCode from "ajv/dist/standalone/index.js";
import { schemaTextsDigest } from "../dist/src/validate/precompiled.js";
import { builtinSchemas } from "../dist/src/validate/schemas.js";

const { ajv, texts, exports } = builtinSchemas(true);
const code = standaloneCode.default(ajv, exports);
const digest = schemaTextsDigest(texts);
writeFileSync(
  "dist/src/validate/builtin.schemas.cjs",
  `${code}\nexports.sourceDigest = ${JSON.stringify(digest)};\n`,
);
