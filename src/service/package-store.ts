/**
 * `--package-dir`: the content-addressed store of package files the service serves itself
 * (src/opamp/downloads.ts). A file is found by its SHA-256: either it is named by its lowercase
 * hex SHA-256, or any other regular file of the folder whose content hashes to it (the folder
 * is indexed at start and again when a hash is asked for that is not known yet, so a file
 * copied in later is found without a restart). Files are never read into memory whole.
 */
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const SHA = /^[0-9a-f]{64}$/;

export class PackageStore {
  readonly dir: string;
  /** sha256 → file path, for files not named by their hash. */
  readonly #byHash = new Map<string, string>();
  /** File names already hashed (name → mtime ms), so a re-index hashes only new files. */
  readonly #seen = new Map<string, number>();
  #indexing: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Hashes every file of the folder not seen yet (one index at a time). */
  index(): Promise<void> {
    this.#indexing ??= (async () => {
      try {
        for (const name of readdirSync(this.dir)) {
          const path = join(this.dir, name);
          const st = statSync(path, { throwIfNoEntry: false });
          if (!st?.isFile() || SHA.test(name) || this.#seen.get(name) === st.mtimeMs) continue;
          this.#byHash.set(await sha256File(path), path);
          this.#seen.set(name, st.mtimeMs);
        }
      } finally {
        this.#indexing = undefined;
      }
    })();
    return this.#indexing;
  }

  /** Path and size of the file with this SHA-256, or undefined. Synchronous. */
  locate(sha256: string): { path: string; size: number } | undefined {
    if (!SHA.test(sha256)) return undefined;
    for (const path of [join(this.dir, sha256), this.#byHash.get(sha256)]) {
      if (!path) continue;
      const st = statSync(path, { throwIfNoEntry: false });
      if (st?.isFile()) return { path, size: st.size };
    }
    return undefined;
  }

  has(sha256: string): boolean {
    return this.locate(sha256) !== undefined;
  }
}

/** Lowercase hex SHA-256 of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
