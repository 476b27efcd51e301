/** The command line as a child process: run it, read its output, wait for log lines. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.js";

/** The command line as users run it: the bundle (scripts/build-bundle.mjs), not tsc's files. */
export const CLI = fileURLToPath(new URL("../../bundle/cli.js", import.meta.url));

export interface CliRun {
  child: ChildProcess;
  exited: Promise<{ code: number; stdout: string; stderr: string }>;
  output(): string;
  errors(): string;
}

/**
 * Starts `opamp-gitops <args>`. OPAMP_GITOPS_* variables of this process are not passed on,
 * so only `env` sets them.
 */
export function run(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("OPAMP_GITOPS_")),
  );
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...base, ...env },
    stdio: "pipe",
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code]) => ({ code: code as number, stdout, stderr }));
  return { child, exited, output: () => stdout, errors: () => stderr };
}

/** Every complete JSON log line whose msg is `msg`, parsed, in order. */
export function logLines<T = Record<string, unknown>>(output: string, msg: string): T[] {
  const found: T[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    let parsed: { msg?: string };
    try {
      parsed = JSON.parse(line) as { msg?: string };
    } catch {
      continue; // the last line may be half written
    }
    if (parsed.msg === msg) found.push(parsed as T);
  }
  return found;
}

/** The first JSON log line whose msg is `msg`, parsed. */
export function logLine<T = Record<string, unknown>>(output: string, msg: string): T | undefined {
  return logLines<T>(output, msg)[0];
}

/** Starts `serve` and waits for its "serving" log line; resolves with the ports. */
export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliRun & { opampPort: number; apiPort: number }> {
  const p = run(["serve", ...args], env);
  try {
    await waitFor("serving", () => logLine(p.output(), "serving") !== undefined, {
      child: p.child,
      timeoutMs: 60_000,
      intervalMs: 50,
    });
  } catch (err) {
    p.child.kill("SIGKILL");
    throw new Error(`${(err as Error).message}\nstderr: ${p.errors()}\nstdout: ${p.output()}`);
  }
  const { opampPort, apiPort } = logLine<{ opampPort: number; apiPort: number }>(
    p.output(),
    "serving",
  ) as { opampPort: number; apiPort: number };
  return { ...p, opampPort, apiPort };
}

/** Where a test's `serve` finds its repository, state, Redis keys and ports. */
export interface TestServeTarget {
  repo: string;
  stateDir: string;
  redisPrefix: string;
  opampPort: number;
  /** Admin tokens file; none: the admin API is open (loopback only). */
  apiTokensFile?: string;
}

/**
 * The serve flags the process tests share: the local repository, a free admin port, Git
 * polled every 200 ms and the status branch flushed every 300 ms (so tests wait little), and
 * one process (`--workers 1`: the pid a test signals or kills is the one serving).
 */
export function testServeArgs(t: TestServeTarget): string[] {
  return [
    "--repo",
    t.repo,
    "--state-dir",
    t.stateDir,
    "--redis-prefix",
    t.redisPrefix,
    "--opamp-listen",
    `127.0.0.1:${t.opampPort}`,
    "--api-listen",
    "127.0.0.1:0",
    ...(t.apiTokensFile ? ["--api-tokens-file", t.apiTokensFile] : []),
    "--poll-interval",
    "200ms",
    "--status-interval",
    "300ms",
    "--workers",
    "1",
  ];
}
