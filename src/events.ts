/**
 * The one typed event emitter of the service (agent events, rollout notices, sync and status
 * writer events). Listeners run synchronously, in subscription order; a listener added or
 * removed during an emit takes effect from the next emit. A listener that throws is handed to
 * `onError` (with the event's name and the event) and does not stop the others or the emitter.
 */
export class TypedEvents<M extends object> {
  readonly #listeners = new Map<keyof M, Set<(event: never) => void>>();
  readonly #onError: (err: unknown, name: keyof M, event: M[keyof M]) => void;

  constructor(onError: (err: unknown, name: keyof M, event: M[keyof M]) => void = () => {}) {
    this.#onError = onError;
  }

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof M>(name: K, listener: (event: M[K]) => void): () => void {
    const set = this.#listeners.get(name) ?? new Set();
    this.#listeners.set(name, set);
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  emit<K extends keyof M>(name: K, event: M[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (event: M[K]) => void)(event);
      } catch (err) {
        this.#onError(err, name, event);
      }
    }
  }
}
