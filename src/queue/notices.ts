/**
 * Typed notices for the status writer and the logs.
 *
 * Contract: a notice is emitted once, by the replica that committed it, after it is in Redis
 * (it is also appended to the `<prefix>:rollout-notices` stream in the same atomic write, for a
 * consumer that must not miss one across restarts). Notices of one group arrive in commit
 * order. Listeners run synchronously; one that throws is logged and does not affect the others.
 */
import type { RolloutNotice } from "./model.js";

type NoticeType = RolloutNotice["type"];
type Listener<T extends NoticeType | "*"> = (
  notice: T extends NoticeType ? Extract<RolloutNotice, { type: T }> : RolloutNotice,
) => void;

export class RolloutNotices {
  readonly #listeners = new Map<string, Set<(n: RolloutNotice) => void>>();
  readonly #onError: (err: unknown, notice: RolloutNotice) => void;

  constructor(onError: (err: unknown, notice: RolloutNotice) => void = () => {}) {
    this.#onError = onError;
  }

  /** Subscribes to one type of notice, or to all with "*"; returns the unsubscribe function. */
  on<T extends NoticeType | "*">(type: T, listener: Listener<T>): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    this.#listeners.set(type, set);
    const l = listener as (n: RolloutNotice) => void;
    set.add(l);
    return () => set.delete(l);
  }

  emit(notice: RolloutNotice): void {
    for (const key of [notice.type, "*"]) {
      for (const listener of this.#listeners.get(key) ?? []) {
        try {
          listener(notice);
        } catch (err) {
          this.#onError(err, notice);
        }
      }
    }
  }
}
