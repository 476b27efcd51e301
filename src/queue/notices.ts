/**
 * Typed notices for the status writer and the logs.
 *
 * Contract: a notice is emitted once, by the replica that committed it, after it is in Redis
 * (it is also appended to the `<prefix>:rollout-notices` stream in the same atomic write, for a
 * consumer that must not miss one across restarts). Notices of one group arrive in commit
 * order. Listeners run synchronously; one that throws is logged and does not affect the others.
 */
import { TypedEvents } from "../events.js";
import type { RolloutNotice } from "./model.js";

type NoticeType = RolloutNotice["type"];
/** Each notice type with its notice, and "*" for every notice. */
type NoticeMap = { [T in NoticeType]: Extract<RolloutNotice, { type: T }> } & {
  "*": RolloutNotice;
};

export class RolloutNotices {
  readonly #events: TypedEvents<NoticeMap>;

  constructor(onError: (err: unknown, notice: RolloutNotice) => void = () => {}) {
    this.#events = new TypedEvents<NoticeMap>((err, _name, notice) => onError(err, notice));
  }

  /** Subscribes to one type of notice, or to all with "*"; returns the unsubscribe function. */
  on<T extends NoticeType | "*">(type: T, listener: (notice: NoticeMap[T]) => void): () => void {
    return this.#events.on(type, listener);
  }

  /** Runs the listeners of the notice's type, then those of "*". */
  emit(notice: RolloutNotice): void {
    this.#events.emit(notice.type, notice as NoticeMap[NoticeType]);
    this.#events.emit("*", notice);
  }
}
