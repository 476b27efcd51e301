// Bundles the console's client (src/console-client) with esbuild into the package:
// dist/src/api/console/assets/app-<hash>.js and .css, and manifest.json naming them
// (src/api/console/assets.ts serves them with immutable cache headers).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { build } from "esbuild";

const outdir = "dist/src/api/console/assets";
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: { app: "src/console-client/app.ts", "app-style": "src/console-client/style.css" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  entryNames: "[name]-[hash]",
  outdir,
  metafile: true,
  logLevel: "warning",
});
const manifest = {};
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  const entry = out.entryPoint ?? "";
  if (entry.endsWith("app.ts")) manifest["app.js"] = basename(file);
  if (entry.endsWith("style.css")) manifest["app.css"] = basename(file);
}
writeFileSync(`${outdir}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
