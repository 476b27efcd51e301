/**
 * `opamp-gitops simulate`: runs a fleet of simulated agents (Collector-supervisor behaviour)
 * against an OpAMP endpoint until interrupted, printing a summary every few seconds.
 */
import { readFileSync } from "node:fs";
import { SimulatedFleet } from "../opamp/index.js";

export interface SimulateOptions {
  agents: string;
  url: string;
  transport: "ws" | "http" | "mixed";
  attributes?: string;
  failWhen?: string;
  applyMs: string;
  tokenFile?: string;
  format: "text" | "json";
  /** Stop after this many seconds (default: run until SIGINT/SIGTERM). */
  duration?: string;
}

/** Parses "k=v,k2=v2" into a map; throws on a pair without "=". */
export function parseAttributes(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? "").split(",").filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new Error(`--attributes: "${pair}" is not key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** Runs the fleet; resolves with the exit code. */
export async function runSimulate(
  o: SimulateOptions,
  out: NodeJS.WriteStream,
  err: NodeJS.WriteStream,
): Promise<number> {
  const agents = Number(o.agents);
  const applyMs = Number(o.applyMs);
  if (!Number.isInteger(agents) || agents < 1)
    return usage(err, `--agents: "${o.agents}" is not a positive integer`);
  if (!Number.isInteger(applyMs) || applyMs < 0)
    return usage(err, `--apply-ms: "${o.applyMs}" is not a number of ms`);
  let attributes: Record<string, string>;
  try {
    attributes = parseAttributes(o.attributes);
  } catch (e) {
    return usage(err, (e as Error).message);
  }
  // Several URLs: replicas behind a load balancer; agents are spread and fail over.
  const urls = o.url
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  const bad = urls.find((u) => !/^(wss?|https?):\/\/[^/]+/.test(u));
  if (urls.length === 0 || bad !== undefined)
    return usage(err, `--url: "${bad ?? o.url}" is not a ws://, wss://, http:// or https:// URL`);
  const duration = o.duration === undefined ? undefined : Number(o.duration);
  if (duration !== undefined && !(duration > 0))
    return usage(err, `--duration: "${o.duration}" is not a number of seconds`);
  let token: string | undefined;
  try {
    token = o.tokenFile ? readFileSync(o.tokenFile, "utf8").trim() : undefined;
  } catch (e) {
    return usage(err, `--token-file: ${(e as Error).message}`);
  }
  const fleet = new SimulatedFleet({
    agents,
    urls,
    transport: o.transport === "ws" ? "websocket" : o.transport,
    attributes,
    applyMs,
    ...(o.failWhen ? { failWhen: o.failWhen } : {}),
    ...(token ? { token } : {}),
  });
  const report = () => {
    const s = fleet.summary();
    if (o.format === "json")
      out.write(`${JSON.stringify({ time: new Date().toISOString(), ...s })}\n`);
    else {
      const hashes = Object.entries(s.byHash)
        .map(([h, n]) => `${h || "local"}: ${n}`)
        .join(", ");
      out.write(
        `${s.connected}/${s.agents} connected; running ${hashes}; applied ${s.applied}, failed ${s.failed}, reconnects ${s.reconnects}\n`,
      );
    }
  };
  const tty = err.isTTY === true && o.format === "text";
  // Armed before the agents start: with no server answering, start-up never ends.
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    if (duration !== undefined) setTimeout(resolve, duration * 1000);
  });
  const started = fleet
    .start((n) => {
      if (tty) err.write(`\rstarting simulated agents: ${n}/${agents}`);
    })
    .then(() => {
      if (tty) err.write("\n");
      report();
    });
  const timer = setInterval(report, 5000);
  await Promise.race([stopped, started.then(() => stopped)]);
  clearInterval(timer);
  await fleet.stop();
  report();
  return 0;
}

function usage(err: NodeJS.WriteStream, message: string): number {
  err.write(`opamp-gitops simulate: ${message}\n`);
  return 2;
}
