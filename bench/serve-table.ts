/**
 * bench:serve's figures per server and the table it prints: one run's figures as they were
 * read, or, over BENCH_ROUNDS rounds (each round measures the peer and every serve in turn),
 * each figure's median with its range and each ratio as the median of the rounds' own
 * ratios (a round's serve ÷ that round's peer, measured minutes apart: the machine's drift
 * between rounds cancels out of a ratio, not out of a figure).
 */

export interface RedisCost {
  commands: number;
  reads: number;
}

export interface Figures {
  name: string;
  connectMs: number;
  settled: number;
  heartbeatsPerSecond: number;
  rssPerAgentBytes: number;
  /** The same, read BENCH_QUIET_SECONDS later with no message in between. */
  rssQuietPerAgentBytes: number;
  stormMs: number;
  stormSettled: number;
  stormShed: number;
  /** The restart before the restart storm: from the new process' start until it served, ms. */
  restartReadyMs: number;
  /**
   * Restart storm: the server restarted (a new process, the same state) and every agent came
   * back at once once it served; wall time until every agent was answered again, ms. Unlike
   * the reconnect storm, the server's code is cold (nothing compiled yet).
   */
  coldStormMs: number;
  coldStormSettled: number;
  coldStormShed: number;
  /** CPU time of the restarted server's processes per agent of the restart storm, µs. */
  coldStormCpuMicros: number;
  /** CPU time of the server's processes per agent connected and configured, µs. */
  connectCpuMicros: number;
  /**
   * serve only: CPU per agent from the first connect until a status flush rendered every agent
   * (their status files on the status branch): the same work whichever way the flush timer
   * falls, where connectCpuMicros counts a flush's render only when it falls in the window.
   */
  connectRenderCpuMicros?: number;
  /**
   * serve only: status commits published while the agents connected (0 or 1 at 3,000 agents).
   * A flush that starts inside the window and commits after it is not counted: at 10,000
   * agents this read 0 while one ran inside; connectRenderCpuMicros is the steadier figure.
   */
  statusCommitsInConnect?: number;
  /** Of connectCpuMicros, user-mode time (the rest is the kernel's: syscalls, page faults), µs. */
  connectUserMicros: number;
  /**
   * CPU time of the agent processes (the load: the same simulator for every server) per agent
   * connected, µs. They share the machine's cores with the server (and Redis): on a machine
   * whose cores are all busy in the window, connect's wall time follows the sum of the three.
   */
  connectLoadCpuMicros: number;
  /** serve only: the Redis server's CPU time (INFO cpu) per agent connected, µs. */
  connectRedisCpuMicros?: number;
  /** Share of all the machine's cores busy in the connect window (/proc/stat), 0–1. */
  connectMachineBusy: number;
  /**
   * serve only: of connectCpuMicros, the time of its processes' main threads (event loops),
   * µs. The rest ran on V8's helper threads (the optimizing compiler: after a 200-agent
   * warm-up much of a connect's code is still being compiled; GC), render/decode/search
   * workers and libuv's pool.
   */
  connectMainThreadMicros?: number;
  /** CPU time of the server's processes per heartbeat answered (whole blast), µs. */
  heartbeatCpuMicros: number;
  /**
   * CPU time of the server's processes per agent of the reconnect storm (its disconnect and
   * its reconnect, from the cut to the last answer), µs: steadier than the storm's wall time,
   * which moves with the agents' Retry-After and with periodic work falling in its window.
   */
  stormCpuMicros: number;
  /**
   * serve only (its /metrics; with workers, of the process that answers it): growth per agent
   * of V8's heap in use (live and not yet collected) and of memory outside it (Buffers, ...).
   */
  heapUsedPerAgentBytes?: number;
  /** Growth per agent of V8's heap reserved from the OS (used, free, new space). */
  heapTotalPerAgentBytes?: number;
  /**
   * Of that, V8's young generation: a burst of allocation grows it to its cap (two 16 MiB
   * semi-spaces here, whatever the fleet's size) and an idle process shrinks it again, so
   * at a few thousand agents it is a fixed cost read as a per-agent one.
   */
  newSpacePerAgentBytes?: number;
  externalPerAgentBytes?: number;
  /**
   * serve only: time in GC pauses (its /metrics) per agent, from before the first agent to the
   * RSS reading, and per heartbeat answered (blast and the 5.5 s after), µs; major GC apart.
   */
  gc?: { connect: number; connectMajor: number; heartbeat: number };
  /** Write syscalls of the server's processes per agent connected and per heartbeat. */
  connectWrites: number;
  heartbeatWrites: number;
  /** Minor page faults of the server's processes per agent connected. */
  connectFaults: number;
  /** Redis commands and socket reads per agent connected / heartbeat / storm agent. */
  redis?: { connect: RedisCost; heartbeat: RedisCost; storm: RedisCost };
  /** serve only: the malloc its processes ran with (serve-load.ts treeAllocators). */
  allocator?: string;
}

/** One round: the peer's figures and each serve's, in BENCH_WORKERS order. */
export interface Round {
  peer: Figures;
  serves: Figures[];
}

export interface TableOptions {
  agents: number;
  /** The heading after the agent count (processes, warm-up, load average). */
  heading: string;
  quietSeconds: number;
}

interface Row {
  label: string;
  value: (f: Figures) => number | undefined;
  format: (n: number) => string;
  /** What follows the ratio; undefined: no ratio printed. */
  target?: string;
}

/** The median (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Bytes as KB with one decimal. */
export const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
/** Milliseconds as seconds, e.g. "2.31 s". */
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
/** Microseconds, rounded, e.g. "1207 µs". */
const micros = (us: number) => `${Math.round(us)} µs`;

function rows(o: TableOptions): Row[] {
  return [
    {
      label: `connect + first config to all ${o.agents}`,
      value: (f) => f.connectMs,
      format: seconds,
      target: " (target ≤ 1.0)",
    },
    {
      label: "heartbeat replies per second",
      value: (f) => f.heartbeatsPerSecond,
      format: (n) => `${Math.round(n)}`,
      target: " (target ≥ 1.0)",
    },
    {
      label: "RSS per connected agent",
      value: (f) => f.rssPerAgentBytes,
      format: kb,
      target: " (target ≤ 1.0 with 1 worker)",
    },
    {
      label: `RSS per connected agent, ${o.quietSeconds} s quiet later`,
      value: (f) => f.rssQuietPerAgentBytes,
      format: kb,
      target: "",
    },
    {
      label: `reconnect storm: all ${o.agents} answered again`,
      value: (f) => f.stormMs,
      format: seconds,
      target: "",
    },
    { label: "agents shed and retried in the storm", value: (f) => f.stormShed, format: String },
    {
      label: `restart storm (new process): all ${o.agents} answered again`,
      value: (f) => f.coldStormMs,
      format: seconds,
      target: "",
    },
    {
      label: "agents shed and retried in the restart storm",
      value: (f) => f.coldStormShed,
      format: String,
    },
    {
      label: "restarted server serving after",
      value: (f) => f.restartReadyMs,
      format: seconds,
    },
    {
      label: "CPU per agent connected + configured",
      value: (f) => f.connectCpuMicros,
      format: micros,
      target: "",
    },
    {
      label: "of it in user mode (rest: kernel)",
      value: (f) => f.connectUserMicros,
      format: micros,
      target: "",
    },
    {
      label: "of it on the event loops (rest: other threads)",
      value: (f) => f.connectMainThreadMicros,
      format: micros,
    },
    {
      label: "CPU per agent of the agent processes (the load)",
      value: (f) => f.connectLoadCpuMicros,
      format: micros,
      target: "",
    },
    {
      label: "CPU per agent of Redis",
      value: (f) => f.connectRedisCpuMicros,
      format: micros,
    },
    {
      label: "machine busy in the connect window (all cores)",
      value: (f) => f.connectMachineBusy,
      format: (n) => `${(n * 100).toFixed(0)} %`,
    },
    {
      label: "CPU per agent until its status was rendered",
      value: (f) => f.connectRenderCpuMicros,
      format: micros,
    },
    {
      label: "status commits in the connect window",
      value: (f) => f.statusCommitsInConnect,
      format: String,
    },
    {
      label: "CPU per agent of the storm",
      value: (f) => f.stormCpuMicros,
      format: micros,
      target: "",
    },
    {
      label: "CPU per agent of the restart storm",
      value: (f) => f.coldStormCpuMicros,
      format: micros,
      target: "",
    },
    {
      label: "CPU per heartbeat answered",
      value: (f) => f.heartbeatCpuMicros,
      format: (n) => `${n.toFixed(1)} µs`,
      target: "",
    },
    {
      label: "write syscalls per agent connected",
      value: (f) => f.connectWrites,
      format: (n) => n.toFixed(2),
      target: "",
    },
    {
      label: "write syscalls per heartbeat",
      value: (f) => f.heartbeatWrites,
      format: (n) => n.toFixed(2),
      target: "",
    },
    {
      label: "page faults per agent connected",
      value: (f) => f.connectFaults,
      format: (n) => n.toFixed(1),
      target: "",
    },
    {
      label: "of RSS/agent: V8 heap used (live + garbage)",
      value: (f) => f.heapUsedPerAgentBytes,
      format: kb,
    },
    {
      label: "of RSS/agent: V8 heap committed",
      value: (f) => f.heapTotalPerAgentBytes,
      format: kb,
    },
    {
      label: "of which young generation (fixed cap, not per agent)",
      value: (f) => f.newSpacePerAgentBytes,
      format: kb,
    },
    {
      label: "of RSS/agent: external (Buffers, ...)",
      value: (f) => f.externalPerAgentBytes,
      format: kb,
    },
    {
      label: "GC pauses per agent connected",
      value: (f) => f.gc?.connect,
      format: micros,
    },
    {
      label: "of which major GC",
      value: (f) => f.gc?.connectMajor,
      format: micros,
    },
    {
      label: "GC pauses per heartbeat",
      value: (f) => f.gc?.heartbeat,
      format: (n) => `${n.toFixed(1)} µs`,
    },
  ];
}

/** A cell over the rounds: the value, or its median and range. */
function cell(values: number[], format: (n: number) => string): string {
  if (values.length === 0) return "n/a";
  if (values.length === 1) return format(values[0] as number);
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

/** Each round's serve ÷ peer, as a cell: the ratio, or the median ratio and its range. */
function ratioCell(pairs: [number, number][]): string {
  const ratios = pairs.filter(([, p]) => p > 0).map(([s, p]) => s / p);
  return ratios.length === 0 ? "n/a" : cell(ratios, (r) => `${r.toFixed(2)}×`);
}

/** The table (markdown) and the lines under it, for `rounds` (at least one). */
export function table(rounds: readonly Round[], o: TableOptions): string[] {
  const first = rounds[0] as Round;
  const serveCount = first.serves.length;
  const multi = rounds.length > 1;
  const out: string[] = [
    "",
    `bench:serve — ${o.agents} WebSocket agents ${o.heading}${multi ? `; ${rounds.length} rounds: medians (range), ratios the median of each round's own` : ""}`,
    "",
    `| | ${first.peer.name} | ${first.serves.map((s) => `${s.name} | ratio`).join(" | ")} |`,
    `|---|---|${first.serves.map(() => "---|---").join("|")}|`,
  ];
  for (const row of rows(o)) {
    const of = (fs: Figures[]) =>
      fs.map(row.value).filter((v): v is number => v !== undefined && Number.isFinite(v));
    const peerValues = of(rounds.map((r) => r.peer));
    const cells: string[] = [];
    for (let i = 0; i < serveCount; i++) {
      const serves = rounds.map((r) => r.serves[i] as Figures);
      cells.push(cell(of(serves), row.format));
      if (row.target === undefined) {
        cells.push("");
        continue;
      }
      const pairs: [number, number][] = [];
      for (const r of rounds) {
        const s = row.value(r.serves[i] as Figures);
        const p = row.value(r.peer);
        if (s !== undefined && p !== undefined) pairs.push([s, p]);
      }
      cells.push(`${ratioCell(pairs)}${row.target}`);
    }
    out.push(`| ${row.label} | ${cell(peerValues, row.format)} | ${cells.join(" | ")} |`);
  }
  for (let i = 0; i < serveCount; i++) {
    const serves = rounds.map((r) => r.serves[i] as Figures);
    const s = serves[0] as Figures;
    if (s.allocator) out.push(`${s.name}: ${s.allocator}`);
    const costs = serves.flatMap((f) => (f.redis ? [f.redis] : []));
    if (costs.length === 0) continue;
    const cost = (pick: (c: NonNullable<Figures["redis"]>) => RedisCost) =>
      `${median(costs.map((c) => pick(c).commands)).toFixed(2)} commands, ${median(costs.map((c) => pick(c).reads)).toFixed(2)} reads`;
    out.push(
      `${s.name}: Redis per agent connected ${cost((c) => c.connect)}; per heartbeat ${cost((c) => c.heartbeat)}; per storm agent ${cost((c) => c.storm)}${multi ? " (medians)" : ""}`,
    );
  }
  rounds.forEach((r, n) => {
    for (const f of [r.peer, ...r.serves])
      if (f.settled < o.agents || f.stormSettled < o.agents || f.coldStormSettled < o.agents)
        out.push(
          `! ${f.name}${multi ? ` (round ${n + 1})` : ""}: only ${f.settled} configured, ${f.stormSettled} after the storm, ${f.coldStormSettled} after the restart`,
        );
  });
  return out;
}
