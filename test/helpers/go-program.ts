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

/** A running program whose events are read as they come. */
export interface GoProcess {
  readonly events: GoEvent[];
  /** Resolves with the first event (already seen or coming) that `ok` accepts; rejects after `ms`. */
  waitFor(ok: (e: GoEvent) => boolean, ms: number, what?: string): Promise<GoEvent>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts the program and reads its JSON-lines events while it runs. */
export function startGoProgram(bin: string, args: string[]): GoProcess {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const events: GoEvent[] = [];
  const waiters = new Set<() => void>();
  let partial = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as GoEvent);
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  let exited = false;
  const closed = new Promise<void>((r) =>
    child.on("close", () => {
      exited = true;
      for (const w of [...waiters]) w();
      r();
    }),
  );
  return {
    events,
    stderr: () => stderr,
    waitFor(ok, ms, what = "event") {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const found = events.find(ok);
          if (!found && exited) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`the program exited before ${what}; stderr:\n${stderr.slice(-4000)}`));
            return;
          }
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolvePromise(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no ${what} within ${ms} ms; events:\n${events.map((e) => JSON.stringify(e)).join("\n")}\nstderr:\n${stderr.slice(-4000)}`,
            ),
          );
        }, ms);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await closed;
    },
  };
}
