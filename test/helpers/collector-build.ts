/**
 * A real OpenTelemetry Collector and the real `opampsupervisor`, built with the Go toolchain
 * for the tests that run real agents (test/interop/collector.test.ts; `validate --otelcol`).
 *
 * - The Collector is built by the Collector Builder (ocb) from the manifest committed at
 *   test/interop/otelcol/builder-config.yaml; the supervisor from its module source. Both are
 *   pinned to COLLECTOR_RELEASE.
 * - Binaries go to a cache folder reused across runs:
 *   `${XDG_CACHE_HOME:-~/.cache}/opamp-gitops/otelcol-<release>/` (override the whole folder
 *   with OPAMP_GITOPS_TEST_COLLECTOR_CACHE). The Collector's file name carries a hash of the
 *   manifest, so editing the manifest rebuilds it. Each binary is built in a temp folder and
 *   renamed into place, so a concurrent or interrupted build never leaves half a binary.
 * - `go install …/cmd/opampsupervisor@<release>` refuses the module ("go.mod contains replace
 *   directives": its go.mod points sibling contrib modules at ../../ paths). So its source is
 *   taken from the module cache (`go mod download -json`), copied, the local `replace` lines
 *   dropped (the published modules of the same release are used instead) and `go build` run
 *   there.
 * - Without a Go toolchain the result is `{ skip }` with the reason; a build that fails
 *   throws (with the tail of its log), so a broken build is never mistaken for a skip.
 *
 * Concurrency: one build per process at a time (the promise is shared); separate processes
 * may build at once, the last rename wins with an identical binary.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findGo } from "./go-program.js";

/** The one release every part is pinned to (builder, components, supervisor). */
export const COLLECTOR_RELEASE = "v0.158.0";

const SUPERVISOR_MODULE =
  "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/opampsupervisor";
const BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder";

/** dist/test/helpers/ → test/interop/otelcol/builder-config.yaml (sources are not in dist). */
export const MANIFEST = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "test",
  "interop",
  "otelcol",
  "builder-config.yaml",
);

export interface CollectorBinaries {
  /** The Collector built from MANIFEST. */
  otelcol: string;
  /** The opampsupervisor of the same release. */
  supervisor: string;
  /** Seconds each part took to build in this call (0 when it came from the cache). */
  seconds: { otelcol: number; supervisor: number };
}

export type CollectorBuild = CollectorBinaries | { skip: string };

/** The cache folder for this release. */
export function cacheDir(): string {
  const override = process.env.OPAMP_GITOPS_TEST_COLLECTOR_CACHE;
  if (override) return override;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "opamp-gitops", `otelcol-${COLLECTOR_RELEASE}`);
}

/** Runs a command; rejects with its output's tail when it fails or runs past `timeoutMs`. */
function exec(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 15 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
        killSignal: "SIGKILL",
      },
      (err, stdout, stderr) => {
        if (err) {
          const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-30).join("\n");
          reject(new Error(`${file} ${args.join(" ")} failed: ${err.message}\n${tail}`));
        } else resolvePromise(`${stdout}`);
      },
    );
  });
}

/** Builds into a temp folder beside `target`, then renames the result into place. */
async function buildInto(
  target: string,
  build: (work: string) => Promise<string>,
): Promise<number> {
  if (existsSync(target)) return 0;
  const started = Date.now();
  const work = mkdtempSync(`${target}.build-`);
  // Not a test teardown: the build's scratch folder goes whether or not the build worked.
  try {
    const built = await build(work);
    renameSync(built, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return (Date.now() - started) / 1000;
}

async function buildOtelcol(go: string, dir: string): Promise<{ path: string; seconds: number }> {
  const manifest = readFileSync(MANIFEST);
  const tag = createHash("sha256").update(manifest).digest("hex").slice(0, 12);
  const path = join(dir, `otelcol-${tag}`);
  const seconds = await buildInto(path, async (work) => {
    const bin = join(dir, "bin");
    const builder = join(bin, "builder");
    if (!existsSync(builder))
      await exec(go, ["install", `${BUILDER_MODULE}@${COLLECTOR_RELEASE}`], {
        env: { GOBIN: bin },
      });
    writeFileSync(join(work, "builder-config.yaml"), manifest);
    await exec(builder, ["--config", "builder-config.yaml"], {
      cwd: work,
      // ocb runs `go`: the one found, first on PATH.
      env: { PATH: `${dirname(go)}${delimiter}${process.env.PATH ?? ""}` },
    });
    return join(work, "build", "otelcol-gitops-test");
  });
  return { path, seconds };
}

async function buildSupervisor(
  go: string,
  dir: string,
): Promise<{ path: string; seconds: number }> {
  const path = join(dir, "opampsupervisor");
  const seconds = await buildInto(path, async (work) => {
    const out = await exec(
      go,
      ["mod", "download", "-json", `${SUPERVISOR_MODULE}@${COLLECTOR_RELEASE}`],
      {
        cwd: work,
        env: { GOFLAGS: "-mod=mod" },
      },
    );
    const info = JSON.parse(out) as { Dir?: string; Error?: string };
    if (!info.Dir) throw new Error(`go mod download: no source folder (${info.Error ?? out})`);
    const src = join(work, "src");
    cpSync(info.Dir, src, { recursive: true });
    // The module cache is read-only; the copy must be writable for go.mod and go.sum.
    await exec("chmod", ["-R", "u+w", src]);
    const goMod = join(src, "go.mod");
    const lines = readFileSync(goMod, "utf8").split("\n");
    // `replace X => ../../x`: the sibling checkout the monorepo builds against; dropped so the
    // published module of the same release (already required at that version) is used.
    const kept = lines.filter((l) => !/^\s*replace\s+\S+(\s+\S+)?\s+=>\s+\.\.?\//.test(l));
    writeFileSync(goMod, kept.join("\n"));
    const bin = join(work, "opampsupervisor");
    await exec(go, ["build", "-trimpath", "-o", bin, "."], {
      cwd: src,
      env: { GOFLAGS: "-mod=mod", CGO_ENABLED: "0" },
    });
    return bin;
  });
  return { path, seconds };
}

let pending: Promise<CollectorBuild> | undefined;

/**
 * The Collector and the supervisor, from the cache or built now (a cold build takes a few
 * minutes; a warm one is a file check). `{ skip }` when there is no Go toolchain.
 */
export function buildCollector(): Promise<CollectorBuild> {
  pending ??= (async (): Promise<CollectorBuild> => {
    const found = findGo();
    if ("reason" in found)
      return { skip: `Go toolchain needed to build the Collector: ${found.reason}` };
    const dir = cacheDir();
    mkdirSync(dir, { recursive: true });
    const otelcol = await buildOtelcol(found.go, dir);
    const supervisor = await buildSupervisor(found.go, dir);
    return {
      otelcol: otelcol.path,
      supervisor: supervisor.path,
      seconds: { otelcol: otelcol.seconds, supervisor: supervisor.seconds },
    };
  })();
  // A failed build may be retried by the next caller.
  pending.catch(() => {
    pending = undefined;
  });
  return pending;
}
