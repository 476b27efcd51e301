/**
 * Files that ship with the code and are read at run time (the protobuf definitions, compiled
 * schemas, the console's assets, the examples), addressed relative to the compiled `dist/src/`
 * directory; and the worker threads' scripts, which are code and run from wherever this runs.
 *
 * Resolved through `../src/` from this module's own URL, which names `dist/src/` both when this
 * module runs from `dist/src/` (tsc's output) and when it runs inside the command-line bundle in
 * `dist/bundle/` (scripts/build-bundle.mjs), so the bundle must stay a sibling of `dist/src/`.
 * A `new URL("./x", import.meta.url)` in another module would name a file next to the bundle
 * instead: use this.
 */
const SRC = new URL("../src/", import.meta.url);

/** The URL of `path` (forward slashes, relative to `dist/src/`, e.g. "opamp/proto/x.proto"). */
export function packageFile(path: string): URL {
  return new URL(path, SRC);
}

/**
 * The URL of a worker thread's script, `path` relative to `dist/src/` ("status/x-worker.js"):
 * next to the running code, so tsc's output starts tsc's worker and the bundle starts the
 * bundled one (scripts/build-bundle.mjs builds each worker as an entry of the same name).
 */
export function workerScript(path: string): URL {
  return new URL(path, new URL("./", import.meta.url));
}
