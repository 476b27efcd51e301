/**
 * Where `opamp-gitops plan` learns today's agents: the running service (`--api-url`: GET
 * /api/v1/agents with the bearer token of `--api-token-file`, like `opamp-gitops agents`) or,
 * offline, the status branch (`--status-ref`, default opamp-status) read from Git objects.
 * Without either (no status branch yet), no agent is known and the plan says so.
 */

import type { ClientSettings } from "../settings.js";
import type { KnownAgent, PlanSource } from "../sync/read-only.js";
import { ApiClient, ApiRefusedError } from "./api-client.js";
import type { AgentSourceInfo } from "./plan-model.js";

/**
 * Agent files read for their component types when no agent can change group (a config edit):
 * a bound on the cost (about 1 ms each) for a group of many agents; beyond it, incompatible
 * agents are counted among those read, and the plan's note says so.
 */
export const MAX_COMPONENT_FILES = 2_000;

/** An agent row of GET /api/v1/agents (src/api/views.ts), as far as plan reads it. */
interface ApiAgent {
  instanceUid: string;
  group: string | null;
  connected: boolean;
  attributes: Record<string, string>;
  componentsHash?: string | null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isAgentRow = (a: unknown) =>
  isObject(a) && typeof a.instanceUid === "string" && isObject(a.attributes);

/**
 * Today's agents: each with its attributes, or (when the plan says no agent can change group)
 * only the number per group (`_unassigned` for none), which a status branch answers from one
 * file.
 */
export interface AgentsRead {
  agents?: KnownAgent[];
  counts?: Map<string, number>;
  info: AgentSourceInfo;
}

export interface AgentsWanted {
  /** Whether agents may change group (selectors, priorities or the set of groups changed). */
  attributes: boolean;
  /** Without attributes: the groups whose agents are counted. */
  groups: string[];
}

/**
 * Today's agents from the service's admin API, each with its component types when it reported
 * them (GET /api/v1/components; a service without that route gives none). Throws
 * ApiUnreachableError, ApiRefusedError.
 */
export async function agentsFromApi(settings: ClientSettings): Promise<AgentsRead> {
  const client = new ApiClient(settings, { timeoutMs: 30_000 });
  const rows = await client.agents<ApiAgent>(new URLSearchParams(), isAgentRow);
  const sets = rows.some((r) => typeof r.componentsHash === "string")
    ? await client
        .get<Record<string, Record<string, string[]>>>("/api/v1/components", isObject)
        .catch((err) => {
          if (err instanceof ApiRefusedError) return {};
          throw err;
        })
    : {};
  const agents = rows.map((r) => ({
    instanceUid: r.instanceUid,
    attributes: new Map(
      Object.entries(r.attributes).filter((e): e is [string, string] => typeof e[1] === "string"),
    ),
    group: typeof r.group === "string" ? r.group : null,
    connected: r.connected === true,
    ...componentsOf(sets, r.componentsHash),
  }));
  return { agents, info: { kind: "api", from: settings.apiUrl, known: agents.length } };
}

/** Today's agents from the status branch `ref` of the repository. */
export async function agentsFromStatusBranch(
  source: PlanSource,
  ref: string,
  wanted: AgentsWanted,
): Promise<AgentsRead> {
  if (!wanted.attributes) {
    const counts = await source.agentCounts(ref, wanted.groups);
    // The agent files of the listed groups only, for their component types (incompatible
    // agents), at most MAX_COMPONENT_FILES (each costs a blob read and a YAML parse): the
    // counts stay the folders' (one tree read per group).
    const listed =
      counts && (await source.knownAgents(ref, new Set(wanted.groups), MAX_COMPONENT_FILES));
    if (counts)
      return {
        ...(listed ? { agents: listed.agents } : {}),
        counts: counts.groups,
        info: {
          kind: "status-branch",
          from: ref,
          commit: counts.commit,
          known: counts.total,
          note:
            "no agent can change group: counted in the status branch folders of the groups listed" +
            (listed?.truncated
              ? `; components checked on the first ${MAX_COMPONENT_FILES} agent files only`
              : ""),
        },
      };
  }
  const read = await source.knownAgents(ref);
  if (!read)
    return {
      agents: [],
      info: {
        kind: "none",
        from: ref,
        known: 0,
        note: `no status branch "${ref}" in the repository (fetch it, or pass --api-url): agent counts are unknown and shown as 0`,
      },
    };
  return {
    agents: read.agents,
    info: {
      kind: "status-branch",
      from: ref,
      commit: read.commit,
      known: read.agents.length,
      ...(read.skipped > 0 ? { skipped: read.skipped } : {}),
      ...(read.truncated ? { note: "the status branch holds more agent files than are read" } : {}),
    },
  };
}

function componentsOf(
  sets: Record<string, Record<string, string[]>>,
  hash: string | null | undefined,
): { components?: Record<string, string[]> } {
  const set = typeof hash === "string" ? sets[hash] : undefined;
  return isObject(set) ? { components: set } : {};
}
