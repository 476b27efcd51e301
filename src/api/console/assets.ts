/**
 * The console's static assets: the client script and style sheet that `npm run build` bundles
 * with esbuild into `dist/src/api/console/assets/` under content-hashed names, listed in
 * `manifest.json` (`{"app.js": "app-<hash>.js", "app.css": "app-<hash>.css"}`). They are served
 * under `/assets/<name>` with `Cache-Control: immutable` (a new build has new names). Without
 * a manifest (sources run unbuilt) pages still render, without script or style.
 */
import { readFileSync } from "node:fs";
import type { Context } from "hono";
import { packageFile } from "../../package-files.js";

const DIR = packageFile("api/console/assets/");
const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

export interface AssetNames {
  script?: string;
  style?: string;
}

function readManifest(): Record<string, string> {
  try {
    return JSON.parse(readFileSync(new URL("manifest.json", DIR), "utf8")) as Record<
      string,
      string
    >;
  } catch {
    return {};
  }
}

export class ConsoleAssets {
  readonly names: AssetNames;
  readonly #files = new Map<string, Buffer>();

  constructor() {
    const manifest = readManifest();
    const names: AssetNames = {};
    for (const [key, file] of Object.entries(manifest)) {
      if (!/^[\w.-]+$/.test(file)) continue;
      try {
        this.#files.set(file, readFileSync(new URL(file, DIR)));
      } catch {
        continue;
      }
      if (key === "app.js") names.script = `/assets/${file}`;
      if (key === "app.css") names.style = `/assets/${file}`;
    }
    this.names = names;
  }

  /** `GET /assets/:name`: a built file, cached for a year (its name changes with its bytes). */
  serve(c: Context): Response {
    const name = c.req.param("name") ?? "";
    const body = this.#files.get(name);
    if (!body) return c.text("no such asset", 404);
    const type = TYPES[name.split(".").pop() ?? ""] ?? "application/octet-stream";
    return c.body(new Uint8Array(body), 200, {
      "Content-Type": type,
      "Cache-Control": "public, max-age=31536000, immutable",
    });
  }
}
