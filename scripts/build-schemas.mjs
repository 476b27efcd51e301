// Writes the built-in and status JSON Schemas as ajv standalone code (CommonJS) next to the
// compiled validators, each set with the digest of the schema texts it came from
// (src/validate/schema-set.ts loads them instead of compiling, while the texts match).
import { writeFileSync } from "node:fs";
import { BUILTIN_SCHEMAS } from "../dist/src/validate/schemas.js";
import { STATUS_SCHEMAS } from "../dist/src/validate/status-schemas.js";

for (const set of [BUILTIN_SCHEMAS, STATUS_SCHEMAS])
  writeFileSync(set.modulePath, await set.standaloneModule());
