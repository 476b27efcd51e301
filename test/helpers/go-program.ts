/**
 * The Go interop program (test/interop/go) for tests: find a Go toolchain, build the program
 * once per test into a temp folder (Go's module and build caches make later builds quick),
 * and run it to completion, reading its JSON-lines events.
 */
import { execFile, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** dist/test/helpers/ → test/interop/go (the sources are not copied into dist). */
export const GO_SOURCE_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "test",
  "interop",
  "go",
);

export type GoEvent = Record<string, unknown> & { event: string };

export interface GoRun {
  code: number | null;
  events: GoEvent[];
  stderr: string;
}

/** The go binary: the first on PATH, else /usr/local/go/bin/go; or why there is none. */
export function findGo(): { go: string } | { reason: string } {
  const candidates = [
    ...(process.env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((d) => join(d, "go")),
    "/usr/local/go/bin/go",
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return { go: candidate };
    } catch {}
  }
  return { reason: "no executable go on PATH or at /usr/local/go/bin/go" };
}

/** Builds the program into `bin`; throws with Go's output when the build fails. */
export async function buildGoProgram(go: string, bin: string): Promise<void> {
  try {
    await promisify(execFile)(go, ["build", "-buildvcs=false", "-o", bin, "."], {
      cwd: GO_SOURCE_DIR,
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`go build in ${GO_SOURCE_DIR} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

/** Runs the program to completion; kills it if it outlives `killAfterMs`. */
export function runGoProgram(bin: string, args: string[], killAfterMs: number): Promise<GoRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("error", (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(killer);
      const events = stdout
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as GoEvent);
      resolvePromise({ code, events, stderr });
    });
  });
}
