/** A forked benchmark process with typed IPC: send commands, await reports by type. */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

interface Waiter<T> {
  type: string;
  resolve: (message: T) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Child<In, Out extends { type: string }> {
  readonly proc: ChildProcess;
  readonly #inbox: Out[] = [];
  readonly #waiters: Waiter<Out>[] = [];
  #exited: Error | undefined;

  constructor(
    readonly name: string,
    script: string,
    execArgv: string[] = [],
  ) {
    this.proc = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (message: Out) => {
      const i = this.#waiters.findIndex((w) => w.type === message.type);
      if (i < 0) {
        this.#inbox.push(message);
        return;
      }
      const [waiter] = this.#waiters.splice(i, 1);
      if (!waiter) return;
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    });
    this.proc.on("exit", (code, signal) => {
      this.#exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(this.#exited);
      }
    });
  }

  send(message: In): void {
    if (this.proc.connected) this.proc.send(message as object);
  }

  /** The next report of `type` (already received or to come), within `timeoutMs`. */
  next<T extends Out["type"]>(type: T, timeoutMs: number): Promise<Extract<Out, { type: T }>> {
    const i = this.#inbox.findIndex((m) => m.type === type);
    if (i >= 0) {
      const [message] = this.#inbox.splice(i, 1);
      return Promise.resolve(message as Extract<Out, { type: T }>);
    }
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.#waiters.findIndex((w) => w.timer === timer);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new Error(`${this.name}: no "${type}" report within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push({
        type,
        resolve: resolve as (m: Out) => void,
        reject,
        timer,
      });
    });
  }

  /** Asks the process to exit, then kills it (by its own pid) if it has not within 5 s. */
  async stop(exitMessage: In): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.send(exitMessage);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}
