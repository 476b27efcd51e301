/**
 * ValidationCache: results of group validation, reused when nothing they depend on changed,
 * so that a commit changing one group of 1,000 costs about one group's work.
 *
 * Key: group name, the group folder's identity (Git tree id, or a content hash for a working
 * tree) and a hash of fleet.yaml's bytes. A result that depends on a repository schema file
 * records that file's path and hash, checked before reuse. Entries not used by the last two
 * validations are dropped, so the cache holds about two commits' worth of groups. A cache
 * serves one validation at a time (the sync loop validates commits one after the other).
 *
 * FileResultMemo: findings of a single config file by (schema, content hash), positions
 * relative to the file, so identical files (templated fleets) are checked once, and a change
 * of fleet.yaml, which revalidates every group, does not parse their config files again.
 */
import type { Finding, GroupSpec } from "./model.js";

/** Findings of one file without the file path (re-stamped on use). */
export type FileFindings = Array<Omit<Finding, "file">>;

export class FileResultMemo {
  readonly #entries = new Map<string, FileFindings>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** The memoized findings, stamped with `file`, or undefined. */
  get(key: string, file: string): Finding[] | undefined {
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    // Most recently used last.
    this.#entries.delete(key);
    this.#entries.set(key, hit);
    return hit.map((f) => ({ ...f, file }));
  }

  set(key: string, findings: readonly Finding[]): void {
    if (this.#entries.size >= this.#limit)
      this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(
      key,
      findings.map(({ file: _file, ...rest }) => rest),
    );
  }
}

export interface CachedGroupResult {
  findings: Finding[];
  spec?: GroupSpec;
  /** A repository schema the result depends on. */
  schemaDep?: { path: string; hash: string };
}

export class ValidationCache {
  /** Single-file results by content, shared by every validation using this cache. */
  readonly files = new FileResultMemo();
  #entries = new Map<string, { result: CachedGroupResult; generation: number }>();
  #generation = 0;
  hits = 0;
  misses = 0;

  get size(): number {
    return this.#entries.size;
  }

  /** The cached result for `key`, marking it used by the current validation. */
  get(key: string): CachedGroupResult | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    entry.generation = this.#generation;
    return entry.result;
  }

  set(key: string, result: CachedGroupResult): void {
    this.#entries.set(key, { result, generation: this.#generation });
  }

  /** Ends a validation: drops what the last two did not use. */
  endValidation(): void {
    for (const [key, entry] of this.#entries)
      if (entry.generation < this.#generation - 1) this.#entries.delete(key);
    this.#generation++;
  }
}
