/**
 * The status commits the writer made on the config branch (folder mode). FleetSync sees each
 * as the branch's new head; the status files must keep naming the config commit under it as
 * the one served, or every flush would cause the next. `alias()` maps a status commit to the
 * config commit it sits on; after a restart, `learn()` recognizes the writer's commits on top
 * of the branch by their committer.
 */
import type { ObjectWriter } from "./git-store/index.js";

const LIMIT = 1000;

export class OwnCommits {
  /** commit → parent, oldest first. */
  readonly #parents = new Map<string, string | undefined>();

  remember(commit: string, parent: string | undefined): void {
    this.#parents.set(commit, parent);
    if (this.#parents.size > LIMIT)
      this.#parents.delete(this.#parents.keys().next().value as string);
  }

  /** The first commit below `commit` that the writer did not make (itself if not ours). */
  alias(commit: string): string {
    let c = commit;
    for (let i = 0; i <= LIMIT && this.#parents.has(c); i++) {
      const parent = this.#parents.get(c);
      if (parent === undefined) break;
      c = parent;
    }
    return c;
  }

  /** Walks back from `head` over commits committed by `email` (at most 200). */
  async learn(objects: ObjectWriter, head: string | undefined, email: string): Promise<void> {
    let c = head;
    for (let i = 0; c && i < 200; i++) {
      const commit = await objects.readCommit(c).catch(() => undefined);
      if (!commit || commit.committerEmail !== email) break;
      this.remember(c, commit.parents[0]);
      c = commit.parents[0];
    }
  }
}
