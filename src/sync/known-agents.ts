/**
 * The agents a status branch knows (DESIGN §4: `status/agents/<group>/<uid>.yaml`), read from
 * Git objects of a commit (never a checkout), for `opamp-gitops plan` offline.
 *
 * Status files are the service's own output, but a branch can be pushed by anyone: every file
 * is bounded (MAX_AGENT_FILE_BYTES; larger ones are skipped and counted), the number of files
 * read is bounded (MAX_AGENT_FILES), names must be a canonical uid under a group-name folder,
 * and a file is used only when it parses and has the expected fields (others are counted as
 * skipped, never thrown).
 */

import { GROUP_NAME } from "../validate/group.js";

// The status branch layout (DESIGN §4), restated rather than imported from src/status: its
// paths module loads the whole OpAMP module, which a short-lived `plan` must not pay for.
const UNASSIGNED = "_unassigned";
const isGroupName = (name: string) => name.length <= 63 && GROUP_NAME.test(name);

import { loadYaml } from "../validate/yaml.js";
import type { ObjectStore, TreeEntry } from "./object-store.js";

/** An agent as `plan` needs it: its attributes (matched against selectors) and its group. */
export interface KnownAgent {
  instanceUid: string;
  /** Attribute name → value as selectors compare it (a string). */
  attributes: Map<string, string>;
  /** The group the source recorded it in; null when unassigned. */
  group: string | null;
  connected: boolean;
  /** kind → component types of its build (AvailableComponents), when the source knows them. */
  components?: Readonly<Record<string, readonly string[]>>;
}

export interface KnownAgents {
  agents: KnownAgent[];
  /** Files not used: too large, unreadable, or not an agent status file. */
  skipped: number;
  /** True when MAX_AGENT_FILES was reached (the rest was not read). */
  truncated: boolean;
}

export const MAX_AGENT_FILE_BYTES = 256 * 1024;
export const MAX_AGENT_FILES = 200_000;
const UID_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.yaml$/;
const CONCURRENCY = 64;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The attributes of a status file's description (identifying ones win, as in src/opamp). */
function attributesOf(description: unknown): Map<string, string> | undefined {
  if (!isObject(description)) return undefined;
  const out = new Map<string, string>();
  for (const part of ["nonIdentifying", "identifying"]) {
    const attrs = description[part];
    if (attrs === undefined) continue;
    if (!isObject(attrs)) return undefined;
    for (const [k, v] of Object.entries(attrs))
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean")
        out.set(k, String(v));
  }
  return out;
}

/**
 * A status file's `components.kinds` (kind → types); undefined when absent or malformed, and
 * when the writer cut the list (`truncated`): a partial list cannot tell what the build lacks.
 */
export function componentsOf(v: unknown): Record<string, string[]> | undefined {
  if (!isObject(v) || !isObject(v.kinds) || v.truncated !== undefined) return undefined;
  const out: Record<string, string[]> = {};
  for (const [kind, types] of Object.entries(v.kinds)) {
    if (!Array.isArray(types)) return undefined;
    out[kind] = types.filter((t): t is string => typeof t === "string");
  }
  return out;
}

function agentOf(v: unknown): KnownAgent | undefined {
  if (!isObject(v) || typeof v.instanceUid !== "string") return undefined;
  const attributes = attributesOf(v.description);
  if (!attributes) return undefined;
  const group = typeof v.group === "string" && isGroupName(v.group) ? v.group : null;
  const components = componentsOf(v.components);
  return {
    instanceUid: v.instanceUid,
    attributes,
    group,
    connected: v.connected === true,
    ...(components ? { components } : {}),
  };
}

/**
 * Parses one agent status file; undefined when it is not one. The writer puts what plan needs
 * (instanceUid, group, connected, description, components) before `capabilities:`, so that prefix alone is
 * parsed first (the effective config after it is most of the file, and YAML parsing costs
 * milliseconds per file); a file whose prefix lacks them is parsed whole.
 */
export function parseAgentStatus(body: Uint8Array, path: string): KnownAgent | undefined {
  if (body.length > MAX_AGENT_FILE_BYTES) return undefined;
  const cut = Buffer.from(body.buffer, body.byteOffset, body.length).indexOf("\ncapabilities:");
  if (cut > 0) {
    const head = loadYaml(body.subarray(0, cut + 1), path);
    const agent = agentOf(head.yaml?.value);
    if (agent) return agent;
  }
  return agentOf(loadYaml(body, path, { maxBytes: MAX_AGENT_FILE_BYTES }).yaml?.value);
}

/** Agents per group, counted from the status branch's folders. */
export interface AgentCounts {
  groups: Map<string, number>;
  total: number;
}

/**
 * Counts the agent files in `status/agents/<group>/` of `commit` for each of `groups`: one tree
 * read per group, no file read, for a plan in which no agent can change group.
 */
export async function readAgentCounts(
  store: ObjectStore,
  commit: string,
  groups: readonly string[],
): Promise<AgentCounts> {
  const out: AgentCounts = { groups: new Map(), total: 0 };
  let tree: string = await store.commitTree(commit);
  for (const part of ["status", "agents"]) {
    const entries = await store.readTree(tree);
    const entry = entries.find((e) => e.path === part && e.type === "tree");
    if (!entry) return out;
    tree = entry.oid;
  }
  const folders = new Map((await store.readTree(tree)).map((e) => [e.path, e]));
  await Promise.all(
    groups.filter(isGroupName).map(async (g) => {
      const folder = folders.get(g);
      const n =
        folder?.type === "tree"
          ? (await store.readTree(folder.oid)).filter(
              (e) => e.type === "blob" && UID_FILE.test(e.path),
            ).length
          : 0;
      out.groups.set(g, n);
      out.total += n;
    }),
  );
  return out;
}

/**
 * Reads every agent file under `status/agents/` of `commit` (the status branch's head), or
 * only those of the group folders `groups` when given, at most `maxFiles` (MAX_AGENT_FILES).
 * `prefix` is where the status layout starts ("" on an orphan status branch).
 */
export async function readKnownAgents(
  store: ObjectStore,
  commit: string,
  prefix = "",
  groups?: ReadonlySet<string>,
  maxFiles = MAX_AGENT_FILES,
): Promise<KnownAgents> {
  const out: KnownAgents = { agents: [], skipped: 0, truncated: false };
  let tree = await store.commitTree(commit);
  for (const part of [...prefix.split("/").filter(Boolean), "status", "agents"]) {
    const entry = (await store.readTree(tree)).find((e) => e.path === part && e.type === "tree");
    if (!entry) return out;
    tree = entry.oid;
  }
  const files: Array<{ entry: TreeEntry; path: string }> = [];
  for (const folder of await store.readTree(tree)) {
    if (folder.type !== "tree" || (folder.path !== UNASSIGNED && !isGroupName(folder.path)))
      continue;
    if (groups && !groups.has(folder.path)) continue;
    for (const entry of await store.readTree(folder.oid)) {
      if (entry.type !== "blob" || !UID_FILE.test(entry.path)) continue;
      if (files.length >= maxFiles) {
        out.truncated = true;
        break;
      }
      files.push({ entry, path: `status/agents/${folder.path}/${entry.path}` });
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const { entry, path } = files[next++] as (typeof files)[number];
      let agent: KnownAgent | undefined;
      try {
        agent = parseAgentStatus(await store.readBlob(entry.oid), path);
      } catch {
        agent = undefined;
      }
      if (agent && `${agent.instanceUid}.yaml` === entry.path) out.agents.push(agent);
      else out.skipped++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  out.agents.sort((a, b) => (a.instanceUid < b.instanceUid ? -1 : 1));
  return out;
}
