/**
 * Fixtures for `opamp-gitops plan` tests: a fleet repository with a first commit (the base),
 * a known set of agents, and a way to run the command and read what it printed.
 */
import { after } from "node:test";
import { type PlanOptions, runPlan } from "../../src/commands/plan.js";
import type { Plan } from "../../src/commands/plan-model.js";
import type { StatusAgent } from "../helpers/status-branch.js";
import { uidOf } from "../status/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { cleanup, TestRepo } from "../sync/helpers/git-repo.js";

const repos: string[] = [];
after(() => cleanup(...repos));

export const EDGE = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 10, pause: 2m}, {percent: 50, pause: 5m}, {percent: 100}]
  applyTimeout: 5m
  maxFailures: "10%"
`;
export const CANARY = (priority: number) => `selector:
  match: {canary: "true"}
priority: ${priority}
`;
export const GATEWAY = `selector:
  match: {host.role: gateway}
rollout:
  stages: [{percent: 50, pause: 1m}, {percent: 100}]
  applyTimeout: 2m
`;

/** The base commit: groups edge (priority 0) and canary (priority -1), no gateway group. */
export function baseRepo(): TestRepo {
  const r = new TestRepo();
  repos.push(r.dir);
  r.writeAll({
    "groups/edge/group.yaml": EDGE,
    "groups/edge/collector.yaml": collectorYaml("edge"),
    "groups/canary/group.yaml": CANARY(-1),
    "groups/canary/collector.yaml": collectorYaml("canary"),
  });
  r.commit("base");
  return r;
}

/**
 * 20 edge agents (uids 1–20; 1–8 in region eu, the rest us; 1–3 also canary), 5 gateway
 * agents (21–25) and 2 database agents (26–27): 27 in all.
 */
export function fleetAgents(): StatusAgent[] {
  const out: StatusAgent[] = [];
  for (let i = 1; i <= 27; i++) {
    const role = i <= 20 ? "edge" : i <= 25 ? "gateway" : "db";
    const attributes: Record<string, string> = {
      "service.name": "otelcol-contrib",
      "host.role": role,
      region: i <= 8 ? "eu" : "us",
    };
    if (i <= 3) attributes.canary = "true";
    out.push({ uid: uidOf(i), group: role === "edge" ? "edge" : null, attributes });
  }
  return out;
}

export interface PlanRun {
  code: number;
  out: string;
  err: string;
  /** The JSON plan, when the format was json. */
  plan?: Plan;
}

export async function plan(
  opts: Partial<PlanOptions> & { repo: string },
  env: NodeJS.ProcessEnv = {},
): Promise<PlanRun> {
  let out = "";
  let err = "";
  const code = await runPlan(
    { base: "HEAD~1", head: "HEAD", format: "json", ...opts },
    { write: (s: string) => (out += s) },
    { write: (s: string) => (err += s) },
    env,
  );
  const run: PlanRun = { code, out, err };
  if ((opts.format ?? "json") === "json" && out) run.plan = JSON.parse(out) as Plan;
  return run;
}

/** The plan of one group, or a failed assertion naming the groups there are. */
export function group(p: Plan | undefined, name: string) {
  const g = p?.groups.find((x) => x.name === name);
  if (!g)
    throw new Error(`no group ${name} in the plan: ${p?.groups.map((x) => x.name).join(", ")}`);
  return g;
}
