/**
 * In-process CPU profiling of a time window (the same V8 sampler as `node --cpu-prof`, but
 * limited to the steady-state phase), summarised by self time per function and per file.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import type { ProfileEntry, ProfileSummary } from "./ipc.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export class WindowProfiler {
  #session: Session | undefined;

  async start(): Promise<void> {
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
    this.#session = session;
  }

  /** Stops, writes the .cpuprofile to `path` when given, and summarises it. */
  async stop(path?: string): Promise<ProfileSummary | undefined> {
    const session = this.#session;
    if (!session) return undefined;
    this.#session = undefined;
    const { profile } = (await session.post("Profiler.stop")) as unknown as {
      profile: CpuProfile;
    };
    session.disconnect();
    if (path) writeFileSync(path, JSON.stringify(profile));
    return { ...summarise(profile), ...(path ? { path } : {}) };
  }
}

function shortUrl(url: string): string {
  if (url === "") return "";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const dist = url.lastIndexOf("/dist/");
  if (dist >= 0) return url.slice(dist + "/dist/".length);
  return url.replace(/^file:\/\//, "");
}

function frameName(f: CallFrame): string {
  const fn = f.functionName || "(anonymous)";
  const url = shortUrl(f.url);
  return url ? `${fn} (${url}:${f.lineNumber + 1})` : fn;
}

export function summarise(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    total += dt;
    const name = frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + dt);
    const file = shortUrl(node.callFrame.url) || node.callFrame.functionName || "(native)";
    files.set(file, (files.get(file) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const key = frameName(n.callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  });
  const list = (m: Map<string, number>): ProfileEntry[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({
        name,
        selfMs: round(ms),
        selfPercent: round((100 * ms) / (total || 1)),
      }));
  return {
    totalMs: round(total),
    byFunction: list(self),
    inclusive: list(inclusive).filter((e) => !/^\((root|program)\)/.test(e.name)),
    byFile: list(files),
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
