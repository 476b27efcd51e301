/**
 * Turns a flush plan into one published commit: blobs written once, then per attempt the
 * changes applied on the current head's tree, one commit, and a compare-and-swap publish.
 * When the branch moved, the same changes are applied again on the new head (nobody else's
 * commit is rewritten), after a backoff; after `attempts` refusals it gives up (the changes
 * stay pending). A tree equal to the head's means nothing to commit.
 */
import { Backoff } from "../backoff.js";
import { LockLostError, PublishFailedError } from "./errors.js";
import type { FlushPlan } from "./flush-plan.js";
import type { ObjectWriter } from "./git-store/index.js";
import { type ApplyStats, applyChanges } from "./git-store/index.js";
import type { StatusLogger } from "./logger.js";
import { commitMessage } from "./message.js";
import type { StatusTarget } from "./target.js";

/** A flush writing at least this many files writes them as a pack, not loose objects. */
export const BULK_PACK_FILES = 1000;

export interface PublishContext {
  objects: ObjectWriter;
  target: StatusTarget;
  /** Writes many new blobs as one pack (the packer's `packBlobs`); absent: always loose. */
  packBlobs?: (contents: readonly Uint8Array[]) => Promise<string[]>;
  /** Checks (and extends) the writer lock right before publishing. */
  stillWriter: () => Promise<boolean>;
  attempts: number;
  author: { name: string; email: string };
  /** Named in a `Status-Writer:` trailer of the commit; absent: no trailer. */
  writerId?: string;
  now: () => number;
  log: StatusLogger;
}

export interface Published {
  commit?: string;
  base?: string;
  files: number;
  message?: string;
  attempts: number;
  tree: ApplyStats;
}

export async function publishPlan(ctx: PublishContext, plan: FlushPlan): Promise<Published> {
  const { objects, target } = ctx;
  // In path order, whatever order they were rendered in (slices overlap): neighbours in one
  // folder are alike, and packBlobs deltas each blob against the previous one.
  const toWrite = [...plan.changes]
    .filter((e): e is [string, Uint8Array] => e[1] !== null)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const contents = toWrite.map(([, c]) => c);
  const ids =
    contents.length >= BULK_PACK_FILES && ctx.packBlobs
      ? await ctx.packBlobs(contents)
      : await objects.writeBlobs(contents);
  const blobIds = new Map(toWrite.map(([p], i) => [p, ids[i] as string]));
  const fresh = new Map(contents.map((c, i) => [ids[i] as string, c]));
  const retry = new Backoff({ initialMs: 200, maxMs: 5_000 });
  for (let attempt = 1; attempt <= ctx.attempts; attempt++) {
    const base = await target.base();
    const baseTree = base ? (await objects.readCommit(base)).tree : undefined;
    const { tree, stats } = await applyChanges(objects, baseTree, plan.changes, blobIds);
    if (tree === baseTree && base !== undefined)
      return { files: 0, attempts: attempt, tree: stats };
    const files = await countChanged(objects, baseTree, tree, plan.changes);
    const message = withWriter(commitMessage({ ...plan.messageInputs, files }), ctx.writerId);
    const commit = await objects.writeCommit({
      tree: tree ?? (await objects.writeTree(new Map())),
      parents: base ? [base] : [],
      message,
      author: ctx.author,
      timestamp: ctx.now(),
    });
    if (!(await ctx.stillWriter())) throw new LockLostError(target.branch);
    if ((await target.publish(commit, base, { objects, fresh })) === "published")
      return { commit, base, files, message, attempts: attempt, tree: stats };
    target.invalidate();
    ctx.log.info({ attempt, base }, "status: the branch moved; rebuilding on its new head");
    if (attempt < ctx.attempts) await new Promise((r) => setTimeout(r, retry.next()));
  }
  throw new PublishFailedError(
    `branch ${target.branch} kept moving: ${ctx.attempts} attempts rejected`,
    { branch: target.branch, attempts: ctx.attempts },
  );
}

/** The message with a `Status-Writer:` trailer (its own last paragraph, as git expects). */
export function withWriter(message: string, writerId: string | undefined): string {
  // A trailer value is one line: an id with a line break would forge other trailers.
  return writerId ? `${message}\nStatus-Writer: ${writerId.replace(/\s+/g, " ")}\n` : message;
}

/** How many of the planned paths differ between two root trees. */
async function countChanged(
  objects: ObjectWriter,
  before: string | undefined,
  after: string | undefined,
  changes: ReadonlyMap<string, Uint8Array | null>,
): Promise<number> {
  const lookup = async (root: string | undefined, path: string): Promise<string | undefined> => {
    let tree = root;
    const parts = path.split("/");
    const name = parts.pop() as string;
    for (const dir of parts) {
      if (!tree) return undefined;
      tree = (await objects.readTree(tree)).get(dir)?.oid;
    }
    return tree ? (await objects.readTree(tree)).get(name)?.oid : undefined;
  };
  let n = 0;
  for (const path of changes.keys())
    if ((await lookup(before, path)) !== (await lookup(after, path))) n++;
  return n;
}
