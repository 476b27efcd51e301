/**
 * Servers the benchmarks start beside the one they measure, and the warm-up of the agent
 * processes: forked once, they measure every server in turn, and the first server measured
 * used to meet them cold (nothing of their own code compiled: measured in bench:serve, ~1,000
 * µs of the load's CPU per agent against ~500–700 µs for the servers after it; on 2 cores the
 * load's CPU slows that server's connect). warmLoad runs them once against a throwaway Node
 * floor first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  type AgentsChild,
  connectAll,
  heartbeats,
  type LoadOptions,
  phase,
  stopProcess,
} from "./serve-load.js";

/** Spawns a server that prints `{"port":N,...}` on its first stdout line once listening. */
export async function startListening(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(command, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()).port));
    proc.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { proc, port };
}

/**
 * The Node floor (bench/node-floor-server.ts: the peer's logic on plain `ws`, no Redis)
 * serving the collector config at `config`, its node started with `nodeArgs` in `env`.
 */
export function startFloor(
  config: string,
  { nodeArgs = [] as readonly string[], env = process.env } = {},
): Promise<{ proc: ChildProcess; port: number }> {
  const script = fileURLToPath(new URL("./node-floor-server.js", import.meta.url));
  return startListening("node floor", process.execPath, [...nodeArgs, script, config], env);
}

/**
 * One unmeasured pass of `children` (`load.agents` agents connect and are configured, 1 s of
 * heartbeats, all closed) against a Node floor started for it and stopped after, so their
 * code is compiled before the first server is measured.
 */
export async function warmLoad(
  children: AgentsChild[],
  config: string,
  load: LoadOptions,
  tag?: string,
): Promise<void> {
  phase("warming the agent processes against a throwaway Node floor", tag);
  const floor = await startFloor(config);
  try {
    await connectAll(children, [`ws://127.0.0.1:${floor.port}/v1/opamp`], false, load);
    await heartbeats(children, 1000);
    for (const child of children) child.send({ type: "closeAgents", timeoutMs: 5000 });
    await Promise.all(children.map((ch) => ch.next("agentsClosed", 30_000)));
  } finally {
    await stopProcess(floor.proc);
  }
}
