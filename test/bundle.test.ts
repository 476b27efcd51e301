/**
 * The command-line bundle (scripts/build-bundle.mjs) finds what tsc's output finds: every
 * file the code reads at run time is named through src/package-files.ts, every worker script
 * it starts was bundled under the same name, and nothing in the bundle resolves a path from
 * its own location any other way (which would name a file next to the bundle that is not
 * there: a missing proto, or compiled schemas silently compiled again at every start).
 * The CLI and end-to-end tests run the bundle itself (test/helpers/cli.ts).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { packageFile } from "../src/package-files.js";

const DIST = fileURLToPath(new URL("../", import.meta.url));

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".js"))
    .map((f) => join(dir, f));
}

/** The string arguments of `name("…")` calls in tsc's output. */
function literalArguments(name: string): string[] {
  const re = new RegExp(`\\b${name}\\(\\s*["\`]([^"\`$]+)["\`]\\s*\\)`, "g");
  const found = new Set<string>();
  for (const file of jsFiles(join(DIST, "src"))) {
    for (const m of readFileSync(file, "utf8").matchAll(re)) if (m[1]) found.add(m[1]);
  }
  return [...found].sort();
}

test("the bundle resolves paths from its own location only through package-files and require", () => {
  const allowed = [
    // the banner: Node's require for bundled CommonJS packages (resolves packages, not files)
    /const require = __createRequire\(import\.meta\.url\);/,
    // src/package-files.ts
    /var SRC = new URL\("\.\.\/src\/", import\.meta\.url\);/,
    /return new URL\(path, new URL\("\.\/", import\.meta\.url\)\);/,
    // src/malloc-trim.ts: a package; src/validate/schema-set.ts: an absolute path
    /createRequire\(import\.meta\.url\)\("koffi"\)/,
    /createRequire\(import\.meta\.url\)\(path\)/,
  ];
  const files = jsFiles(join(DIST, "bundle"));
  assert.ok(files.length > 1, "dist/bundle/ is built (npm run build)");
  const strays: string[] = [];
  for (const file of files) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.includes("import.meta.url")) continue;
      if (!allowed.some((re) => re.test(line)))
        strays.push(`${file}: ${line.trim().slice(0, 120)}`);
    }
  }
  assert.deepEqual(strays, [], "use packageFile() or workerScript() (src/package-files.ts)");
});

test("every worker script started by name is bundled under that name", () => {
  const workers = literalArguments("workerScript");
  assert.deepEqual(workers, [
    "opamp/decode-worker.js",
    "service/search-text-worker.js",
    "status/render-worker.js",
  ]);
  for (const path of workers) {
    assert.ok(existsSync(join(DIST, "src", path)), `dist/src/${path}`);
    assert.ok(existsSync(join(DIST, "bundle", path)), `dist/bundle/${path}`);
  }
});

test("every file named through packageFile exists next to tsc's output", () => {
  const paths = literalArguments("packageFile");
  assert.ok(paths.includes("opamp/proto/opamp.proto"), paths.join(", "));
  for (const path of paths) {
    assert.ok(existsSync(fileURLToPath(packageFile(path))), `${path} → ${packageFile(path)}`);
  }
});
