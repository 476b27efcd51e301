/**
 * The Collector's own check (issue 14): a group's config files are handed to an operator's
 * Collector binary (`<binary> validate --config a.yaml --config b.yaml`, merged in the group's
 * order as the Collector merges several --config files), so what only a component knows (a
 * setting it refuses, `send_batch_max_size` below `send_batch_size`) is stopped before rollout.
 *
 * Binaries come from the command line only (`--otelcol <path>` for every group,
 * `--otelcol <name>=<path>` for groups with `config.distribution: <name>`): a repository
 * chooses among binaries the operator installed, never a path.
 *
 * Codes: OTELCOL_COLLECTOR_REJECTED (error: the binary refused the configuration; located on
 * the component or setting its message names, else the first file), OTELCOL_COLLECTOR_FAILED
 * (error: the binary could not be run or timed out), OTELCOL_DISTRIBUTION_UNKNOWN (error: the
 * group names a distribution no --otelcol gives).
 *
 * Bounds: each run has a timeout (DEFAULT_TIMEOUT_MS) and an output limit; results are kept
 * by (binary, files) in the checker, so an unchanged group is not checked again.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { finding, START } from "./findings.js";
import type { Finding } from "./model.js";
import { COMPONENT_KINDS } from "./otelcol-catalog.js";
import type { Where } from "./otelcol-context.js";

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 256 * 1024;
const MAX_MESSAGE = 2_000;

/** Which binary checks which group: `""` for groups without a distribution. */
export type CollectorBinaries = ReadonlyMap<string, string>;

/** A bad `--otelcol` value. */
export class OtelcolFlagError extends Error {}

/** Parses `--otelcol` values (`<path>` or `<name>=<path>`, repeatable). */
export function parseOtelcolFlags(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const m = /^([a-z0-9][a-z0-9._-]*)=(.+)$/i.exec(v);
    const [name, path] = m ? [m[1] as string, m[2] as string] : ["", v];
    if (path.trim() === "") throw new OtelcolFlagError(`--otelcol "${v}" names no binary`);
    if (out.has(name))
      throw new OtelcolFlagError(
        name ? `--otelcol ${name}= is given twice` : "--otelcol <path> (no name) is given twice",
      );
    out.set(name, path);
  }
  return out;
}

export interface CollectorFile {
  name: string;
  body: Uint8Array;
}

/** Where the binary's message points: a path of the merged configuration, when it names one. */
export function pathOfMessage(message: string): { path: string[]; key: boolean } | undefined {
  const kinds = COMPONENT_KINDS.join("|");
  const quoted = new RegExp(`'(${kinds})' error reading configuration for "([^"]+)"`).exec(message);
  if (quoted) {
    const keys = /has invalid keys: ([^\s,]+)/.exec(message);
    const base = [quoted[1] as string, quoted[2] as string];
    return keys ? { path: [...base, keys[1] as string], key: true } : { path: base, key: true };
  }
  const colons = new RegExp(`\\b(${kinds})::([^\\s:]+(?:::[^\\s:]+)*)`).exec(message);
  if (colons)
    return { path: [colons[1] as string, ...(colons[2] as string).split("::")], key: true };
  const service = /\bservice::((?:[^\s:]+)(?:::[^\s:]+)*)/.exec(message);
  if (service) return { path: ["service", ...(service[1] as string).split("::")], key: true };
  return undefined;
}

function run(binary: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; output: string; error?: string }>((resolve) => {
    execFile(
      binary,
      args,
      { timeout: timeoutMs, maxBuffer: MAX_OUTPUT, env: { PATH: process.env.PATH ?? "" } },
      (err, stdout, stderr) => {
        const output = `${stderr}\n${stdout}`.trim();
        if (!err) return resolve({ code: 0, output });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
        if (typeof e.code === "number") return resolve({ code: e.code, output });
        resolve({
          code: null,
          output,
          error: e.killed ? "timed out" : (e.code as string) || e.message,
        });
      },
    );
  });
}

/** Runs Collector binaries on groups' files; remembers results by binary and content. */
export class CollectorChecker {
  readonly #memo = new Map<
    string,
    Promise<{ ok: true } | { ok: false; message: string; failed: boolean }>
  >();

  constructor(
    readonly binaries: CollectorBinaries,
    readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  /**
   * Checks one group's files (in the order served). `distribution` is its config.distribution;
   * `dir` the group folder (for findings without a position); `where` locates a path of the
   * merged configuration. No binary for a group without distribution: no finding.
   */
  async check(
    dir: string,
    distribution: string | undefined,
    files: readonly CollectorFile[],
    where: Where,
    distributionAt: { file: string; line: number; column: number },
  ): Promise<Finding[]> {
    const binary = this.binaries.get(distribution ?? "");
    if (!binary) {
      if (distribution === undefined) return [];
      const known = [...this.binaries.keys()].filter(Boolean);
      return [
        finding(
          distributionAt.file,
          distributionAt,
          "error",
          "OTELCOL_DISTRIBUTION_UNKNOWN",
          `config.distribution is "${distribution}", but no Collector of that name is given to this check (${known.length ? `known: ${known.join(", ")}` : `give one with --otelcol ${distribution}=<path>`})`,
          { distribution },
        ),
      ];
    }
    const key = createHash("sha256");
    key.update(binary).update("\0");
    for (const f of files) key.update(f.name).update("\0").update(f.body).update("\0");
    const digest = key.digest("hex");
    let result = this.#memo.get(digest);
    if (!result) {
      result = this.#run(binary, files);
      this.#memo.set(digest, result);
    }
    const r = await result;
    if (r.ok) return [];
    const label = distribution ? `the ${distribution} Collector` : "the Collector";
    if (r.failed)
      return [
        finding(
          `${dir}/${files[0]?.name ?? ""}`,
          START,
          "error",
          "OTELCOL_COLLECTOR_FAILED",
          `${label} (${binary}) could not check this configuration: ${r.message}`,
          { binary },
        ),
      ];
    const at = pathOfMessage(r.message);
    const pos = at ? where(at.path, at.key) : { file: `${dir}/${files[0]?.name ?? ""}`, ...START };
    return [
      {
        file: pos.file,
        line: pos.line,
        column: pos.column,
        severity: "error",
        code: "OTELCOL_COLLECTOR_REJECTED",
        message: `${label} refuses this configuration: ${r.message}`,
        data: { binary, ...(at ? { path: at.path } : {}) },
      },
    ];
  }

  async #run(binary: string, files: readonly CollectorFile[]) {
    const dir = await mkdtemp(join(tmpdir(), "opamp-gitops-otelcol-"));
    try {
      const args = ["validate"];
      for (const [i, f] of files.entries()) {
        // Numbered names keep the order and never depend on a name from the repository.
        const path = join(dir, `${i}.yaml`);
        await writeFile(path, f.body);
        args.push(`--config=${path}`);
      }
      const r = await run(binary, args, this.timeoutMs);
      const message = r.output
        .replace(/^Error: /gm, "")
        .replace(new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g"), "")
        .replace(/\s+/g, " ")
        .trim()
        .slice(0, MAX_MESSAGE);
      if (r.code === 0) return { ok: true as const };
      if (r.code === null)
        return { ok: false as const, failed: true, message: r.error ?? "it did not run" };
      return { ok: false as const, failed: false, message: message || `exit code ${r.code}` };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
