/**
 * The packs the status writer made, listed in `<gitdir>/opamp-gitops/status-packs` (Git
 * ignores unknown files in the git directory, not in objects/pack), and their merging: when
 * there are more than `maxPacks`, the smallest are copied into one (a geometric progression
 * with factor 2, as `git repack --geometric=2` keeps), the result is read back in full, then
 * the sources are removed (index first). Nothing is merged when a multi-pack-index exists.
 *
 * In a store the writer owns (a remote's clone), the packs isomorphic-git fetched are adopted
 * into the list (`adopt`) once they read back in full as self-contained packs (whole objects
 * and OFS_DELTA only), so they are merged too and their number stays bounded. In a user's
 * repository, packs Git made are never touched.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PackFailedError } from "../errors.js";
import { PackIndex } from "./pack-index.js";
import { mergePacks } from "./pack-merge.js";
import { verifyOrRemovePack, verifyPack } from "./pack-verify.js";

export class OwnPacks {
  readonly packDir: string;
  readonly #listFile: string;
  /** Packs `adopt` found unfit. */
  readonly #refused = new Set<string>();

  constructor(gitdir: string) {
    this.packDir = join(gitdir, "objects", "pack");
    this.#listFile = join(gitdir, "opamp-gitops", "status-packs");
  }

  async list(): Promise<string[]> {
    try {
      const text = await readFile(this.#listFile, "utf8");
      return text.split("\n").filter((l) => /^pack-[0-9a-f]{40}$/.test(l));
    } catch {
      return [];
    }
  }

  async remember(added: string[], removed: string[]): Promise<void> {
    const gone = new Set(removed);
    const list = [...(await this.list()).filter((n) => !gone.has(n)), ...added];
    await mkdir(join(this.#listFile, ".."), { recursive: true });
    const tmp = `${this.#listFile}.tmp`;
    await writeFile(tmp, `${[...new Set(list)].join("\n")}\n`);
    await rename(tmp, this.#listFile);
  }

  /**
   * Adds the packs of the store not in the list yet (fetched ones) to it, each after it reads
   * back in full; a pack that does not (REF_DELTA entries, damage) is left as it is, and not
   * tried again by this instance. Only for a store the writer owns. Returns how many.
   */
  async adopt(): Promise<number> {
    const names = await readdir(this.packDir).catch(() => [] as string[]);
    if (names.includes("multi-pack-index")) return 0;
    const own = new Set(await this.list());
    const found = names
      .filter((n) => /^pack-[0-9a-f]{40}\.pack$/.test(n))
      .map((n) => n.slice(0, -".pack".length))
      .filter((n) => !own.has(n) && !this.#refused.has(n) && names.includes(`${n}.idx`));
    const adopted: string[] = [];
    for (const n of found) {
      try {
        await verifyPack(
          join(this.packDir, `${n}.pack`),
          new PackIndex(`${n}.idx`, await readFile(join(this.packDir, `${n}.idx`))),
        );
        adopted.push(n);
      } catch {
        this.#refused.add(n);
      }
    }
    if (adopted.length > 0) await this.remember(adopted, []);
    return adopted.length;
  }

  /** Reads a pack back in full; removes it (and throws) when it does not verify. */
  verifyOrRemove(name: string): Promise<void> {
    return verifyOrRemovePack(this.packDir, name);
  }

  /** Merges the smallest packs when there are more than `maxPacks`; returns how many. */
  async merge(maxPacks: number): Promise<number> {
    const own = await this.list();
    if (own.length <= maxPacks) return 0;
    const names = await readdir(this.packDir).catch(() => [] as string[]);
    if (names.includes("multi-pack-index")) return 0;
    const present = own.filter((n) => names.includes(`${n}.pack`) && names.includes(`${n}.idx`));
    const sized = await Promise.all(
      present.map(async (n) => ({ n, size: (await stat(join(this.packDir, `${n}.pack`))).size })),
    );
    sized.sort((a, b) => a.size - b.size);
    let acc = sized[0]?.size ?? 0;
    let m = 1;
    while (m < sized.length && (sized[m]?.size ?? 0) < 2 * acc) {
      acc += sized[m]?.size ?? 0;
      m++;
    }
    m = Math.max(m, Math.min(2, sized.length));
    if (m < 2) return 0;
    const chosen = sized.slice(0, m).map((s) => s.n);
    const indexes: PackIndex[] = [];
    for (const n of chosen)
      indexes.push(new PackIndex(`${n}.idx`, await readFile(join(this.packDir, `${n}.idx`))));
    let merged: string;
    try {
      merged = await mergePacks(this.packDir, indexes);
    } catch (err) {
      throw new PackFailedError(`merging ${chosen.length} packs failed`, err);
    }
    await this.verifyOrRemove(merged);
    await this.remember([merged], chosen);
    for (const n of chosen) {
      if (n === merged) continue;
      await rm(join(this.packDir, `${n}.idx`), { force: true });
      await rm(join(this.packDir, `${n}.pack`), { force: true });
    }
    return chosen.length;
  }
}
