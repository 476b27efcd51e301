/**
 * Rotation without a restart: the agent tokens file, the admin tokens file and the client CA
 * are re-read when they change (stat polling, which also sees atomic renames and Kubernetes'
 * symlink swaps of secret volumes) and on demand (`reload()`, which `serve` calls on SIGHUP).
 *
 * A file that cannot be read or does not parse is logged and the credentials in use are kept:
 * a half-written file never opens an endpoint or locks every agent out. Sessions already
 * admitted keep running; new connections and HTTP polls are checked against the new set.
 */
import { readFileSync, unwatchFile, watchFile } from "node:fs";
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
  #watching: string[] = [];

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

  /** Starts watching the files that are set. */
  start(): void {
    for (const [kind, path] of Object.entries(this.#files) as [keyof CredentialFiles, string][]) {
      if (!path) continue;
      watchFile(path, { interval: this.#intervalMs, persistent: false }, (now, before) => {
        if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino)
          this.#load(kind, path);
      });
      this.#watching.push(path);
    }
  }

  /** Re-reads every file now; resolves with how many were loaded. */
  reload(): number {
    let loaded = 0;
    for (const [kind, path] of Object.entries(this.#files) as [keyof CredentialFiles, string][])
      if (path && this.#load(kind, path)) loaded++;
    return loaded;
  }

  close(): void {
    for (const path of this.#watching) unwatchFile(path);
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
