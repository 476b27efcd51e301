/**
 * The one polling helper of the tests: waits until a check holds, with a deadline (never a
 * fixed sleep). Tests wait on what they observe, so none depends on timing.
 */
import type { ChildProcess } from "node:child_process";

export interface WaitOptions {
  /** Give up after this long, in ms. Default 10 000. */
  timeoutMs?: number;
  /** Pause between checks, in ms. Default 10. */
  intervalMs?: number;
  /** A process whose exit ends the wait with an error (its exit code in the message). */
  child?: ChildProcess;
  /**
   * Treat a check that throws as "not yet" (e.g. a service that is restarting) instead of
   * failing the wait; the last error is named in the timeout message. Default false.
   */
  ignoreErrors?: boolean;
  /** Appended to the timeout message: what was seen last, to debug a failure. */
  detail?: () => string;
}

/**
 * Calls `check` until it returns something other than undefined or false, and resolves to that
 * (a predicate resolves to true). Rejects naming `what` after `timeoutMs`, or as soon as
 * `child` has exited.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<Exclude<T, undefined | false>> {
  const { timeoutMs = 10_000, intervalMs = 10, child, ignoreErrors = false, detail } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    let value: T | undefined | false;
    try {
      value = await check();
    } catch (err) {
      if (!ignoreErrors) throw err;
      lastError = err;
    }
    if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>;
    const exited = child !== undefined && child.exitCode !== null;
    if (Date.now() > deadline || exited) {
      const code = child ? ` (exit code ${child.exitCode})` : "";
      const error = lastError === undefined ? "" : ` (last error: ${lastError})`;
      const seen = detail ? `: ${detail()}` : "";
      throw new Error(`timed out waiting for ${what}${code}${error}${seen}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Reads a value until `ok` holds and resolves to it: for a service that may be restarting or
 * gone (a read that throws means "not yet"); the last value read is named on timeout.
 * Polls every 100 ms; `timeoutMs` defaults to 30 000.
 */
export async function waitForValue<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  let last: T | undefined;
  await waitFor(
    what,
    async () => {
      last = await read();
      return ok(last);
    },
    {
      timeoutMs,
      intervalMs: 100,
      ignoreErrors: true,
      detail: () => `last ${JSON.stringify(last)}`,
    },
  );
  return last as T;
}
