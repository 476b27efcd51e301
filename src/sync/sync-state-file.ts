/**
 * What the sync loop remembers across restarts, in `<stateDir>/sync-state.json`: the last
 * head seen (so a history rewrite across a restart is still reported) and the last valid
 * commit with each group's hash provenance (so a restart neither forgets where a hash came
 * from nor serves nothing when the branch head is invalid). Written atomically (temp file +
 * rename); a missing or unreadable file is an empty memory, never an error.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface SyncStateFile {
  version: 1;
  /** Identifies the source (URL or path, branch, watched path); other sources' files are ignored. */
  source: string;
  head?: string;
  lastValid?: {
    commit: string;
    groups: Record<string, { configHash: string; hashCommit: string }>;
  };
}

const FILE = "sync-state.json";

export async function loadSyncState(
  dir: string,
  source: string,
): Promise<SyncStateFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, FILE), "utf8")) as SyncStateFile;
    if (parsed.version !== 1 || parsed.source !== source) return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

export async function saveSyncState(dir: string, state: SyncStateFile): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `${FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, join(dir, FILE));
}
