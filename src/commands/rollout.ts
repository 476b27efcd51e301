/**
 * `opamp-gitops rollout status|pause|resume|promote|abort <group>` and `opamp-gitops agents`:
 * the commands that talk to a running service's admin API.
 *
 * Exit codes: 0 done; 1 the service refused (unknown group, nothing in flight, already
 * paused); 2 usage or settings; 3 the service cannot be reached or refused the credentials.
 */
import type { GroupRolloutStatus } from "../queue/index.js";
import { type ClientFlags, loadClientSettings } from "../settings.js";
import { ApiClient, ApiRefusedError, ApiUnreachableError } from "./api-client.js";

import type { RolloutAction } from "./rollout-actions.js";

export { ROLLOUT_ACTIONS, type RolloutAction } from "./rollout-actions.js";

export interface ClientOptions extends ClientFlags {
  format: "text" | "json";
}

type Out = { write(s: string): unknown };

const short = (h: string | undefined) => (h ? h.slice(0, 7) : "none");
const isObject = (b: unknown): b is Record<string, unknown> =>
  typeof b === "object" && b !== null && !Array.isArray(b);
const isGroupStatus = (b: unknown) => isObject(b) && typeof b.group === "string";
const isList = (item: (b: unknown) => boolean) => (b: unknown) => Array.isArray(b) && b.every(item);

/** Agents of a group left out of its rollouts for lacking component types (API field). */
export interface IncompatibleView {
  count: number;
  examples: { uid: string; missing: string[] }[];
}

/** Human text for one group's rollout status. */
export function formatRolloutStatus(
  s: GroupRolloutStatus & { incompatible?: IncompatibleView },
  now = Date.now(),
): string {
  const lines = [`group ${s.group}`];
  lines.push(
    `  stable    ${s.stable ? `${short(s.stable.hash)} (from commit ${short(s.stable.commit)})` : "none yet"}`,
  );
  const inc = s.incompatible;
  const incompatible: string[] = [];
  if (inc && inc.count > 0) {
    incompatible.push(
      `  incompatible ${inc.count} agent${inc.count === 1 ? "" : "s"} lack a component type of the config (left out of rollouts)`,
    );
    for (const e of inc.examples.slice(0, 5))
      incompatible.push(`    ${e.uid} lacks ${e.missing.join(", ")}`);
    if (inc.count > 5) incompatible.push(`    … ${inc.count - 5} more`);
  }
  const r = s.rollout;
  if (!r) return `${[...lines, "  rollout   none", ...incompatible].join("\n")}\n`;
  const stage =
    r.stage < 0 ? "before stage 1" : `stage ${r.stage + 1}/${r.stages} (${r.percent ?? "?"} %)`;
  lines.push(`  rollout   ${r.id}  ${r.status}  ${stage}`);
  lines.push(`  target    ${short(r.target.hash)} (from commit ${short(r.target.commit)})`);
  lines.push(
    `  cohort    ${r.cohort} of ${r.members} agents: ${r.applied} applied, ${r.failed} failed, ${r.pending} pending`,
  );
  if (r.hold) lines.push(`  held      by ${r.hold.by} (${r.hold.source})`);
  else if (r.nextStageAt !== undefined && r.status === "in-progress")
    lines.push(`  next      stage in ${Math.max(0, Math.round((r.nextStageAt - now) / 1000))} s`);
  if (r.endReason) lines.push(`  ended     ${r.endReason}`);
  for (const f of r.failures.slice(0, 5))
    lines.push(`  failure   ${f.uid} ${f.reason}${f.error ? `: ${f.error}` : ""}`);
  if (r.failures.length > 5) lines.push(`  …         ${r.failures.length - 5} more failures`);
  return `${[...lines, ...incompatible].join("\n")}\n`;
}

/** Runs a client command body, mapping errors to exit codes. */
export async function run(
  opts: ClientOptions,
  err: Out,
  body: (api: ApiClient) => Promise<void>,
): Promise<number> {
  const api = new ApiClient(loadClientSettings(opts));
  try {
    await body(api);
    return 0;
  } catch (e) {
    if (e instanceof ApiRefusedError) {
      err.write(`opamp-gitops: ${e.message} (${e.code})\n`);
      return 1;
    }
    if (e instanceof ApiUnreachableError) {
      err.write(`opamp-gitops: ${e.message}\n`);
      return 3;
    }
    throw e;
  }
}

export function runRollout(
  action: RolloutAction,
  group: string | undefined,
  opts: ClientOptions,
  out: Out,
  err: Out,
): Promise<number> {
  return run(opts, err, async (api) => {
    if (action === "status" && !group) {
      const all = await api.get<GroupRolloutStatus[]>("/api/v1/rollouts", isList(isGroupStatus));
      out.write(
        opts.format === "json"
          ? `${JSON.stringify(all, null, 2)}\n`
          : all.map((s) => formatRolloutStatus(s)).join("\n") || "no groups\n",
      );
      return;
    }
    const path = `/api/v1/rollouts/${encodeURIComponent(group ?? "")}`;
    const status =
      action === "status"
        ? await api.get<GroupRolloutStatus>(path, isGroupStatus)
        : await api.post<GroupRolloutStatus>(`${path}/${action}`, isGroupStatus);
    if (opts.format === "json") out.write(`${JSON.stringify(status, null, 2)}\n`);
    else {
      const done = {
        status: "",
        pause: "paused",
        resume: "resumed",
        promote: "promoted",
        abort: "aborted",
      };
      if (done[action]) out.write(`${done[action]} ${status.rollout?.id ?? group}\n`);
      out.write(formatRolloutStatus(status));
    }
  });
}

interface AgentRow {
  instanceUid: string;
  group: string | null;
  connected: boolean;
  transport: string;
  remoteConfig: { reportedHash: string | null; status: string; error: string | null } | null;
  health: { healthy: boolean } | null;
}

export function runAgents(
  opts: ClientOptions & { group?: string; state?: string },
  out: Out,
  err: Out,
): Promise<number> {
  return run(opts, err, async (api) => {
    const q = new URLSearchParams();
    if (opts.group) q.set("group", opts.group);
    if (opts.state) q.set("state", opts.state);
    const agents = await api.agents<AgentRow>(
      q,
      (a) => isObject(a) && typeof a.instanceUid === "string",
    );
    if (opts.format === "json") {
      out.write(`${JSON.stringify(agents, null, 2)}\n`);
      return;
    }
    const rows = agents.map((a) => [
      a.instanceUid,
      a.group ?? "_unassigned",
      a.connected ? a.transport : "offline",
      a.remoteConfig?.status ?? "-",
      short(a.remoteConfig?.reportedHash ?? undefined),
      a.health ? (a.health.healthy ? "healthy" : "unhealthy") : "-",
      a.remoteConfig?.error ?? "",
    ]);
    const header = ["INSTANCE UID", "GROUP", "CONNECTED", "CONFIG", "HASH", "HEALTH", "ERROR"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
    for (const r of [header, ...rows])
      out.write(
        `${r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd()}\n`,
      );
    out.write(`${agents.length} agents\n`);
  });
}

interface RestartRow {
  instanceUid: string;
  group: string | null;
  result: string;
}

const RESTART_RESULT: Record<string, string> = {
  sent: "restart sent",
  queued: "restart queued for its next poll",
  "not-accepted": "not sent: the agent does not accept restart commands",
  "not-here": "not sent: the agent is not connected to this service",
};

/**
 * `agents restart <uid> | --group <g>`: asks the service to send RESTART to the agent, or to
 * every connected agent of the group. Exit 1 when no agent was sent the command.
 */
export function runAgentsRestart(
  uid: string | undefined,
  opts: ClientOptions & { group?: string },
  out: Out,
  err: Out,
): Promise<number> {
  return run(opts, err, async (api) => {
    const path = uid
      ? `/api/v1/agents/${encodeURIComponent(uid)}/restart`
      : `/api/v1/groups/${encodeURIComponent(opts.group ?? "")}/restart`;
    const rows = await api.post<RestartRow[]>(
      path,
      isList((r) => isObject(r) && typeof r.instanceUid === "string"),
    );
    if (opts.format === "json") out.write(`${JSON.stringify(rows, null, 2)}\n`);
    else {
      for (const r of rows)
        out.write(`${r.instanceUid}  ${RESTART_RESULT[r.result] ?? r.result}\n`);
      out.write(
        `${rows.filter((r) => r.result === "sent" || r.result === "queued").length} of ${rows.length} agents asked to restart\n`,
      );
    }
    if (!rows.some((r) => r.result === "sent" || r.result === "queued"))
      throw new ApiRefusedError(
        409,
        "NO_AGENT_RESTARTED",
        uid
          ? `agent ${uid} was not asked to restart`
          : `no agent of group ${opts.group} was asked to restart`,
      );
  });
}
