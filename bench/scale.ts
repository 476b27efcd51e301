/**
 * `npm run bench:scale`: the same fleet spread over 1, 2 and 3 `serve` replicas (separate
 * processes, `--workers 1` each, one Redis and key prefix, one repository), agent i connecting
 * to replica i mod n as a load balancer would spread them. Printed per replica count:
 *   - connect + first config to all agents;
 *   - push latency: a commit changing the group's config → every agent holds the new config
 *     (Git polled every 200 ms, so up to ~200 ms of it is the poll), against the issue's
 *     target: a desired-state change reaches the agents of every replica within 1 s;
 *   - total heartbeat replies per second over all replicas (closed loop).
 * On a 2-core machine the replicas, Redis and the agent processes share two cores: more
 * replicas add coordination, not cores. Printed as measured. The agent processes run one
 * unmeasured pass against a throwaway Node floor first (warm-load.ts), so the first replica
 * count does not meet them cold.
 *
 * Environment: BENCH_AGENTS=3000, BENCH_AGENT_PROCESSES=2, BENCH_REPLICAS=1,2,3,
 * BENCH_BLAST_SECONDS=5, BENCH_CONCURRENCY=200.
 */
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initRepository } from "../src/sync/init-repo.js";
import { Child } from "./child.js";
import { now, sleep } from "./ipc.js";
import {
  type AgentsChild,
  benchConfigPath,
  connectAll,
  forgetPrefix,
  heartbeats,
  type LoadOptions,
  makeRepo,
  phase,
  startServe,
  stopProcess,
} from "./serve-load.js";
import { warmLoad } from "./warm-load.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 3000);
const PROCESSES = Number(process.env.BENCH_AGENT_PROCESSES ?? 2);
const REPLICAS = (process.env.BENCH_REPLICAS ?? "1,2,3").split(",").map(Number);
const LOAD: LoadOptions = {
  agents: AGENTS,
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 200),
  blastMs: Number(process.env.BENCH_BLAST_SECONDS ?? 5) * 1000,
};
const TAG = "bench:scale";

interface Row {
  replicas: number;
  connectMs: number;
  configured: number;
  pushMs: number;
  pushed: number;
  heartbeatsPerSecond: number;
}

/** Per agent: the config hash it holds and when it received it. */
async function records(children: AgentsChild[]): Promise<{ hash: string; at: number }[]> {
  for (const c of children) c.send({ type: "applyRecords" });
  const all = await Promise.all(children.map((c) => c.next("applyRecords", 30_000)));
  return all.flatMap((r) => r.hash.map((hash, i) => ({ hash, at: r.receivedAt[i] as number })));
}

async function pushLatency(
  children: AgentsChild[],
  repo: string,
  round: number,
): Promise<{ ms: number; pushed: number }> {
  const before = new Set((await records(children)).map((r) => r.hash));
  appendFileSync(benchConfigPath(repo), `# change ${round}\n`);
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], {
      cwd: repo,
      stdio: "ignore",
    });
  git("add", "-A");
  git("commit", "-q", "-m", `bench change ${round}`);
  const committedAt = now();
  const deadline = committedAt + 120_000;
  for (;;) {
    const r = await records(children);
    const fresh = r.filter((x) => x.hash !== "" && !before.has(x.hash));
    if (fresh.length >= AGENTS || now() > deadline)
      return {
        ms: Math.max(...fresh.map((x) => x.at), committedAt) - committedAt,
        pushed: fresh.length,
      };
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-scale-"));
  const children: AgentsChild[] = [];
  const running: ChildProcess[] = [];
  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const rows: Row[] = [];
  try {
    const repo = makeRepo(dir);
    await initRepository(repo);
    for (let i = 0; i < PROCESSES; i++) children.push(new Child(`agents-${i}`, "./agents.js"));
    // The first replica count measured would otherwise meet the agent processes cold.
    await warmLoad(children, benchConfigPath(repo), LOAD, TAG);
    for (const n of REPLICAS) {
      const prefix = `bench-scale-${process.pid}-${n}`;
      const replicas = [];
      for (let i = 0; i < n; i++) {
        const r = await startServe(dir, repo, {
          workers: 1,
          prefix,
          instance: `${n}-${i}`,
          extra: ["--poll-interval", "200ms"],
        });
        running.push(r.proc);
        replicas.push(r);
      }
      const urls = replicas.map((r) => `ws://127.0.0.1:${r.port}/v1/opamp`);
      phase(`${n} replica(s): connecting ${AGENTS} agents`, TAG);
      const c = await connectAll(children, urls, false, LOAD);
      phase(
        `${n} replica(s): ${c.settled} configured in ${(c.elapsedMs / 1000).toFixed(2)} s`,
        TAG,
      );
      await sleep(1000);
      const push = await pushLatency(children, repo, n);
      phase(`${n} replica(s): push to ${push.pushed} agents in ${push.ms.toFixed(0)} ms`, TAG);
      const hb = await heartbeats(children, LOAD.blastMs);
      phase(`${n} replica(s): ${Math.round(hb.perSecond)} heartbeat replies/s`, TAG);
      rows.push({
        replicas: n,
        connectMs: c.elapsedMs,
        configured: c.settled,
        pushMs: push.ms,
        pushed: push.pushed,
        heartbeatsPerSecond: hb.perSecond,
      });
      for (const child of children) child.send({ type: "closeAgents", timeoutMs: 5000 });
      await Promise.all(children.map((ch) => ch.next("agentsClosed", 30_000)));
      for (const r of replicas) await stopProcess(r.proc);
      await forgetPrefix(prefix);
    }
    const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const out = [
      "",
      `bench:scale — ${AGENTS} WebSocket agents from ${PROCESSES} agent processes, spread over the replicas; load average ${load0} before, ${load1} after`,
      "",
      "| replicas | connect + first config | push: commit → all agents hold it (target ≤ 1 s) | heartbeat replies/s (all replicas) |",
      "|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.replicas} | ${(r.connectMs / 1000).toFixed(2)} s (${r.configured}/${AGENTS}) | ${r.pushMs.toFixed(0)} ms (${r.pushed}/${AGENTS}; ${r.pushed === AGENTS && r.pushMs <= 1000 ? "met" : "not met"}) | ${Math.round(r.heartbeatsPerSecond)} |`,
      ),
    ];
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    for (const p of running) await stopProcess(p);
    await Promise.all(children.map((c) => c.stop({ type: "exit" })));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
