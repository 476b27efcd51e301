// Bundles the command line (dist/src/cli.js, tsc's output) and its dependencies with esbuild
// into dist/bundle/: cli.js and a chunk per command module it imports on demand, so that
// `validate` does not load the service. A process then compiles a few files instead of
// resolving, reading and lexing some 900 modules: `serve` and the commands start ~0.3 s
// sooner, and so does each worker thread (docs/performance.md, "Start-up"). Files read at run
// time stay in dist/src/ and are found from the bundle through src/package-files.ts.
import { rmSync } from "node:fs";
import { build } from "esbuild";

const outdir = "dist/bundle";
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: {
    cli: "dist/src/cli.js",
    // Started by path (src/package-files.ts workerScript): each under its dist/src/ name.
    "opamp/decode-worker": "dist/src/opamp/decode-worker.js",
    "status/render-worker": "dist/src/status/render-worker.js",
    "service/search-text-worker": "dist/src/service/search-text-worker.js",
  },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: ["node20"],
  outdir,
  chunkNames: "chunk-[hash]",
  // Native add-ons stay packages: ws loads bufferutil if present, koffi is required at run time.
  external: ["bufferutil", "utf-8-validate", "koffi"],
  // Bundled CommonJS packages call require(); ESM has none, so give the bundle Node's.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  // Error classes and log fields use constructor names: keep them as written.
  keepNames: true,
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
});
