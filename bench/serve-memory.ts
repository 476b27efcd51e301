/**
 * `node dist/bench/serve-memory.js`: where `serve`'s memory per connected agent goes.
 *
 * Starts `serve --workers 1` (Redis, rollouts, status branch on, as bench:serve does) with
 * `--heapsnapshot-signal=SIGUSR2`, connects a warm-up cohort as bench:serve does (configured,
 * rendered by a status flush, staying connected: fixed costs started on first use fall
 * before the baseline), takes a heap snapshot (V8 runs a full GC first) then and another once
 * N more agents (bench/agents.ts) are connected and configured and a status flush rendered
 * them, and prints
 * RSS per agent (both readings once RSS stopped moving: serve-load.ts settledRss), the
 * growth per agent of malloc's heap and of anonymous mappings (V8's heap among them), and
 * the heap growth per agent by object kind (constructor name, or the V8
 * node type for strings, arrays, closures, code and native memory such as ArrayBuffer
 * backing stores), largest first.
 *
 * Environment:
 *   BENCH_AGENTS=3000            agents
 *   BENCH_AGENT_PROCESSES=2      forked agent processes
 *   BENCH_WARMUP=200             warm-up agents before the baseline (0: none)
 *   BENCH_TOP=30                 rows printed
 *   BENCH_KEEP_SNAPSHOTS=1       keep the .heapsnapshot files (path printed)
 *   BENCH_NODE_ARGS=""          extra options for serve's node, space-separated (to compare V8
 *                                settings, e.g. --max-semi-space-size=2)
 *   BENCH_ALLOC_PROFILE=1        also sample allocations while the agents connect (inspector,
 *                                objects a major GC collected included: what grows the old
 *                                generation) and print the top allocating functions
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { initRepository } from "../src/sync/init-repo.js";
import { Child } from "./child.js";
import { sleep } from "./ipc.js";
import {
  type AgentsChild,
  connectAll,
  forgetPrefix,
  makeRepo,
  phase,
  settledRss,
  startServe,
  statusFilesRendered,
  statusHead,
  stopProcess,
  treeRss,
  warmUp,
} from "./serve-load.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 3000);
const PROCESSES = Number(process.env.BENCH_AGENT_PROCESSES ?? 2);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const TOP = Number(process.env.BENCH_TOP ?? 30);
const KEEP = process.env.BENCH_KEEP_SNAPSHOTS === "1";
const ALLOC = process.env.BENCH_ALLOC_PROFILE === "1";
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** A minimal DevTools-protocol client on the serve process' inspector. */
async function inspector(
  port: number,
): Promise<(method: string, params?: object) => Promise<unknown>> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(list[0]?.webSocketDebuggerUrl as string, { maxPayload: 2 ** 30 });
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  let id = 0;
  const waiting = new Map<number, (r: unknown) => void>();
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString()) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  return (method, params = {}) =>
    new Promise((resolve) => {
      waiting.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
}

/** Self bytes per function (file:line), summed over the sampling profile's tree. */
function topAllocators(root: SamplingNode): [string, number][] {
  const out = new Map<string, number>();
  const walk = (n: SamplingNode) => {
    const f = n.callFrame;
    const url = f.url.replace(/^.*\/(dist|node_modules)\//, "");
    const key = `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}`;
    out.set(key, (out.get(key) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(root);
  return [...out].sort((a, b) => b[1] - a[1]);
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per object kind. */
type Kinds = Map<string, { bytes: number; count: number }>;

function kindsOf(path: string): Kinds {
  const snap = JSON.parse(readFileSync(path, "utf8")) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const out: Kinds = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + (typeAt as number)] as number] ?? "?";
    const name = snap.strings[snap.nodes[i + (nameAt as number)] as number] ?? "?";
    const size = snap.nodes[i + (sizeAt as number)] as number;
    // Objects by constructor; natives by their name (e.g. backing stores); the rest by type.
    const kind =
      type === "object" || type === "native" || type === "hidden"
        ? `${name} (${type})`
        : `(${type})`;
    const k = out.get(kind) ?? { bytes: 0, count: 0 };
    k.bytes += size;
    k.count++;
    out.set(kind, k);
  }
  return out;
}

/** The service's own memory figures from its /metrics (prom-client default metrics). */
async function serviceMemory(apiPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  const out: Record<string, number> = {};
  const wanted =
    /^opamp_gitops_(nodejs_heap_size_(?:total|used)_bytes|nodejs_external_memory_bytes|nodejs_heap_space_size_(?:used|total)_bytes\{space="(?:new|old|large_object|code)"\}|process_resident_memory_bytes) (\S+)/;
  for (const line of text.split("\n")) {
    const m = wanted.exec(line);
    if (m) out[(m[1] as string).replace(/^nodejs_|_bytes|_size|process_/g, "")] = Number(m[2]);
  }
  return out;
}

/** RSS of `pid` by mapping kind (/proc/pid/smaps): malloc's [heap], anonymous, files. */
function rssByMapping(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? "";
      kind = name === "" ? "anonymous" : name.startsWith("[") ? name : "files";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) * 1024;
  }
  return out;
}

function perAgentLine(label: string, a: Record<string, number>, b: Record<string, number>): string {
  const keys = Object.keys(b).sort();
  return `${label}: ${keys.map((k) => `${k} ${(((b[k] ?? 0) - (a[k] ?? 0)) / AGENTS / 1024).toFixed(1)}`).join(", ")} (KB/agent)`;
}

/** Sends SIGUSR2 and waits for the snapshot file it writes into `dir` to be complete. */
async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, "SIGUSR2");
  for (let lastSize = -1; ; ) {
    await sleep(1000);
    const file = readdirSync(dir).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
    if (!file) continue;
    const size = statSync(join(dir, file)).size;
    if (size > 0 && size === lastSize) return join(dir, file);
    lastSize = size;
  }
}

const PREFIX = `bench-serve-memory-${process.pid}`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-serve-memory-"));
  const children: AgentsChild[] = [];
  try {
    const repo = makeRepo(dir);
    await initRepository(repo);
    for (let i = 0; i < PROCESSES; i++) children.push(new Child(`agents-${i}`, "./agents.js"));
    const warm: AgentsChild = new Child("agents-warm-up", "./agents.js");
    const s = await startServe(dir, repo, {
      workers: 1,
      prefix: PREFIX,
      instance: "1",
      nodeArgs: [
        "--heapsnapshot-signal=SIGUSR2",
        `--diagnostic-dir=${dir}`,
        ...(ALLOC ? ["--inspect=127.0.0.1:9339"] : []),
        ...NODE_ARGS,
      ],
    });
    try {
      const pid = s.proc.pid as number;
      let rss0: number;
      if (WARMUP > 0) {
        const w = await warmUp(warm, pid, `ws://127.0.0.1:${s.port}/v1/opamp`, {
          agents: WARMUP,
          firstIndex: AGENTS,
          statusRepo: repo,
        });
        rss0 = w.rss;
        phase(
          `warm-up: ${w.settled}/${w.agents} configured, ${w.statusFiles} status files rendered; RSS +${(w.rssGrowth / 2 ** 20).toFixed(1)} MB, threads ${w.threadsBefore} → ${w.threads}`,
          "bench:serve-memory",
        );
      } else rss0 = (await settledRss(pid)).rss;
      const [m0, map0] = [await serviceMemory(s.apiPort), rssByMapping(pid)];
      const snap0 = await snapshot(pid, dir);
      phase(`snapshot with ${WARMUP} warm-up agents: ${snap0}`, "bench:serve-memory");
      // Writing a snapshot grows malloc's heap by tens of MB that stay resident (free): read
      // from the first baseline, RSS per agent counts them; from this one, agents may reuse
      // them and it reads low. Both are printed.
      const { rss: rss0s } = await settledRss(pid);
      const map0s = rssByMapping(pid);
      const cdp = ALLOC ? await inspector(9339) : undefined;
      await cdp?.("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
      });
      const head0 = statusHead(repo);
      const c = await connectAll(children, [`ws://127.0.0.1:${s.port}/v1/opamp`], false, {
        agents: AGENTS,
        concurrency: 200,
        blastMs: 0,
      });
      phase(`${c.settled}/${AGENTS} configured`, "bench:serve-memory");
      if (cdp) {
        const { profile } = (await cdp("HeapProfiler.stopSampling")) as {
          profile: { head: SamplingNode };
        };
        const top = topAllocators(profile.head).slice(0, TOP);
        process.stdout.write(
          `allocated while connecting, live or collected by a major GC (B/agent):\n${top.map(([k, b]) => `${(b / AGENTS).toFixed(0).padStart(7)}  ${k}`).join("\n")}\n`,
        );
      }
      // As bench:serve: read once a status flush rendered the agents too (serve's steady state).
      const files = await statusFilesRendered(repo, head0, c.settled);
      phase(`${files} status files rendered`, "bench:serve-memory");
      const { rss: rss1 } = await settledRss(pid);
      const [m1, map1] = [await serviceMemory(s.apiPort), rssByMapping(pid)];
      const snap1 = await snapshot(pid, dir);
      const rss2 = treeRss(pid);
      const m2 = await serviceMemory(s.apiPort);
      phase(`snapshot with ${AGENTS} more agents: ${snap1}`, "bench:serve-memory");
      const [k0, k1] = [kindsOf(snap0), kindsOf(snap1)];
      const rows = [...k1]
        .map(([kind, v]) => {
          const b = k0.get(kind) ?? { bytes: 0, count: 0 };
          return { kind, bytes: v.bytes - b.bytes, count: v.count - b.count };
        })
        .sort((a, b) => Math.abs(b.bytes) - Math.abs(a.bytes));
      const total = rows.reduce((n, r) => n + r.bytes, 0);
      const perAgent = (bytes: number) => (bytes / AGENTS).toFixed(0).padStart(7);
      const out = [
        `bench:serve-memory — ${AGENTS} agents after ${WARMUP} warm-up agents${NODE_ARGS.length > 0 ? ` (node ${NODE_ARGS.join(" ")})` : ""}, load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
        `RSS per agent: ${((rss1 - rss0) / AGENTS / 1024).toFixed(1)} KB from before the first snapshot, ${((rss1 - rss0s) / AGENTS / 1024).toFixed(1)} KB from after it (after the second snapshot: ${((rss2 - rss0) / AGENTS / 1024).toFixed(1)} KB)`,
        perAgentLine("before the snapshot", m0, m1),
        perAgentLine("after it (full GC)", m0, m2),
        perAgentLine("RSS by mapping", map0, map1),
        perAgentLine("RSS by mapping from after the first snapshot", map0s, map1),
        `heap snapshot growth per agent (live objects after full GC): ${perAgent(total)} B`,
        "",
        "   B/agent  objects/agent  kind",
        ...rows
          .slice(0, TOP)
          .map(
            (r) => `${perAgent(r.bytes)}  ${(r.count / AGENTS).toFixed(2).padStart(13)}  ${r.kind}`,
          ),
      ];
      process.stdout.write(`${out.join("\n")}\n`);
      if (KEEP) process.stdout.write(`snapshots kept: ${snap0} ${snap1}\n`);
    } finally {
      await Promise.all([...children, warm].map((ch) => ch.stop({ type: "exit" })));
      await stopProcess(s.proc);
      await forgetPrefix(PREFIX);
    }
  } finally {
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
