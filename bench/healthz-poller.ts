/**
 * Polls a `/healthz` URL while a benchmark runs and keeps the worst latency. A poll that fails
 * (the service closed after a failed step, a refused connection) is counted, never thrown: the
 * benchmark reports it instead of dying of an unhandled rejection.
 *
 * Concurrency: one poll at a time, `intervalMs` (default 50) between polls; `stop()` resolves
 * once the poll in flight settled.
 */
export interface HealthzPoller {
  /** Worst latency of a successful poll so far, ms. */
  readonly worstMs: number;
  readonly polls: number;
  readonly failures: number;
  /** The first failure's message, if any. */
  readonly firstError: string | undefined;
  stop(): Promise<void>;
}

export function pollHealthz(url: string, intervalMs = 50): HealthzPoller {
  let polling = true;
  const state = {
    worstMs: 0,
    polls: 0,
    failures: 0,
    firstError: undefined as string | undefined,
  };
  const loop = (async () => {
    while (polling) {
      const started = performance.now();
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        state.worstMs = Math.max(state.worstMs, performance.now() - started);
        state.polls++;
      } catch (err) {
        state.failures++;
        state.firstError ??= err instanceof Error ? err.message : String(err);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    get worstMs() {
      return state.worstMs;
    },
    get polls() {
      return state.polls;
    },
    get failures() {
      return state.failures;
    },
    get firstError() {
      return state.firstError;
    },
    async stop() {
      polling = false;
      await loop;
    },
  };
}
