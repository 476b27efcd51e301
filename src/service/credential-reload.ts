/**
 * Rotation without a restart: the agent tokens file, the admin tokens file and the client CA
 * are re-read when they change (stat polling, which also sees atomic renames and Kubernetes'
 * symlink swaps of secret volumes) and on demand (`reload()`, which `serve` calls on SIGHUP).
 *
 * A file that cannot be read or does not parse is logged and the credentials in use are kept:
 * a half-written file never opens an endpoint or locks every agent out. Sessions already
 * admitted keep running; new connections and HTTP polls are checked against the new set.
 */
import { readFileSync, type Stats, statSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { Logger } from "pino";
import type { AgentToken } from "../opamp/index.js";
import { agentTokens, tokenLines } from "../settings.js";

export interface CredentialTargets {
  setAgentTokens(tokens: readonly AgentToken[]): void;
  setAdminTokens(tokens: readonly string[]): void;
  setClientCa(ca: Buffer): void;
}

export interface CredentialFiles {
  opampTokensFile?: string;
  apiTokensFile?: string;
  tlsClientCaFile?: string;
}

export class CredentialReloader {
  readonly #files: CredentialFiles;
  readonly #targets: CredentialTargets;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  /** The files watched, each with what a stat of it gave last (undefined: not there). */
  #watching: { kind: keyof CredentialFiles; path: string; seen: Stats | undefined }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  /** `intervalMs`: how often the files are checked for a change. Default 2000. */
  constructor(
    files: CredentialFiles,
    targets: CredentialTargets,
    logger: Logger,
    { intervalMs = 2000 } = {},
  ) {
    this.#files = files;
    this.#targets = targets;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /**
   * Starts watching the files that are set. Each file's stat is taken now, synchronously, and
   * compared with a fresh one every `intervalMs`: a change made right after start() is seen
   * (fs.watchFile takes its first stat later, on the thread pool, and missed a write that
   * came before it).
   */
  start(): void {
    if (this.#timer) return;
    for (const [kind, path] of Object.entries(this.#files) as [keyof CredentialFiles, string][])
      if (path) this.#watching.push({ kind, path, seen: statOrUndefined(path) });
    if (this.#watching.length === 0) return;
    this.#timer = setInterval(() => void this.#check(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Loads each watched file whose mtime, size or inode changed since it was last seen. */
  async #check(): Promise<void> {
    if (this.#checking) return; // a slow stat (a network volume) is not stacked
    this.#checking = true;
    try {
      for (const file of this.#watching) {
        const now = await stat(file.path).catch(() => undefined);
        if (!this.#timer) return; // closed meanwhile
        const before = file.seen;
        file.seen = now;
        // A file that went away is loaded too: the failure is logged, the credentials kept.
        if (now ? !before || changed(now, before) : before !== undefined)
          this.#load(file.kind, file.path);
      }
    } finally {
      this.#checking = false;
    }
  }

  /** Re-reads every file now; resolves with how many were loaded. */
  reload(): number {
    let loaded = 0;
    for (const [kind, path] of Object.entries(this.#files) as [keyof CredentialFiles, string][])
      if (path && this.#load(kind, path)) loaded++;
    return loaded;
  }

  /** Stops watching. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watching = [];
  }

  #load(kind: keyof CredentialFiles, path: string): boolean {
    try {
      const bytes = readFileSync(path);
      if (kind === "opampTokensFile") {
        const tokens = agentTokens(bytes.toString("utf8"), path, "--opamp-tokens-file");
        this.#targets.setAgentTokens(tokens);
        this.#logger.info({ file: path, tokens: tokens.length }, "agent tokens reloaded");
      } else if (kind === "apiTokensFile") {
        const tokens = tokenLines(bytes.toString("utf8"));
        if (tokens.length === 0) throw new Error(`${path} holds no token`);
        this.#targets.setAdminTokens(tokens);
        this.#logger.info({ file: path, tokens: tokens.length }, "admin API tokens reloaded");
      } else {
        this.#targets.setClientCa(bytes);
        this.#logger.info({ file: path }, "client CA reloaded");
      }
      return true;
    } catch (err) {
      this.#logger.error(
        { err, file: path },
        "cannot reload credentials; the ones in use are kept",
      );
      return false;
    }
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function changed(a: Stats, b: Stats): boolean {
  return a.mtimeMs !== b.mtimeMs || a.size !== b.size || a.ino !== b.ino;
}
