/**
 * Teardown in an `afterEach` hook instead of try/finally in each test: `deferred()` registers
 * the hook in the calling file or suite and returns `defer(fn)`, which a test calls as soon as
 * it has something to close. After each test the cleanups run newest first, every one of
 * them even when one throws (the first error is then thrown).
 */
import { afterEach } from "node:test";

export type Defer = (cleanup: () => unknown) => void;

export function deferred(): Defer {
  let pending: Array<() => unknown> = [];
  afterEach(async () => {
    const cleanups = pending.reverse();
    pending = [];
    let first: unknown;
    let failed = false;
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      }
    }
    if (failed) throw first;
  });
  return (cleanup) => {
    pending.push(cleanup);
  };
}
