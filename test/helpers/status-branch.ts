/**
 * A status branch as `serve` writes it, made fast for tests and benchmarks: each agent's file
 * is produced by the status writer's own code (agentStatus + renderStatusFile, checked against
 * schemas/status-agent.schema.json) and committed to `refs/heads/<ref>` with one
 * `git fast-import` (10,000 files in about a second).
 */
import { execFileSync } from "node:child_process";
import { agentStatus } from "../../src/status/agent-status.js";
import { fleetStatus } from "../../src/status/fleet-status.js";
import type { AgentFacts } from "../../src/status/model.js";
import { agentFilePath, FLEET_FILE } from "../../src/status/paths.js";
import { renderStatusFile } from "../../src/status/render.js";
import { fakeAgent } from "../status/helpers.js";

export interface StatusAgent {
  uid: string;
  /** The group the service placed it in (null: unassigned). */
  group: string | null;
  attributes: Record<string, string>;
  connected?: boolean;
  /** kind → component types of its build (reported as AvailableComponents). */
  components?: Record<string, string[]>;
}

/** Commits the status files of `agents` as a new (orphan) commit of `ref` in `repoDir`. */
export function writeStatusBranch(
  repoDir: string,
  agents: StatusAgent[],
  {
    ref = "opamp-status",
    fleetFile = true,
    extraFiles = {},
  }: {
    ref?: string;
    /** Also write status/fleet.yaml (as the writer does). Default true. */
    fleetFile?: boolean;
    /** Other files, written as they are (hostile input for tests). */
    extraFiles?: Record<string, string | Buffer>;
  } = {},
): string {
  const options = { fleetFile };
  const chunks: Buffer[] = [];
  const data = (text: string | Buffer) => {
    const b = Buffer.isBuffer(text) ? text : Buffer.from(text);
    chunks.push(Buffer.from(`data ${b.length}\n`), b, Buffer.from("\n"));
  };
  chunks.push(
    Buffer.from(
      `commit refs/heads/${ref}\ncommitter opamp-gitops <status@example.com> 1700000000 +0000\n`,
    ),
  );
  data(`status of ${agents.length} agents`);
  const facts: AgentFacts[] = [];
  for (const a of agents) {
    const state = fakeAgent(a.uid, { attributes: a.attributes, connected: a.connected ?? true });
    if (a.components)
      state.availableComponents = {
        hash: Buffer.from(JSON.stringify(a.components)).subarray(0, 16),
        components: Object.fromEntries(
          Object.entries(a.components).map(([kind, types]) => [
            kind,
            { subComponentMap: Object.fromEntries(types.map((t) => [t, {}])) },
          ]),
        ),
      };
    const path = agentFilePath(a.group, a.uid);
    const status = agentStatus(state, { group: a.group, desiredHash: null, desiredCommit: null });
    facts.push(status.facts);
    chunks.push(Buffer.from(`M 100644 inline ${path}\n`));
    data(renderStatusFile("agent", status.file, path));
  }
  for (const [path, content] of Object.entries(extraFiles)) {
    chunks.push(Buffer.from(`M 100644 inline ${path}\n`));
    data(content);
  }
  if (options.fleetFile) {
    const fleet = fleetStatus(facts, {
      source: { repository: repoDir, branch: "main", path: "", serving: null },
      validation: null,
      servedHashes: new Map(),
    });
    chunks.push(Buffer.from(`M 100644 inline ${FLEET_FILE}\n`));
    data(renderStatusFile("fleet", fleet, FLEET_FILE));
  }
  execFileSync("git", ["fast-import", "--quiet", "--force"], {
    cwd: repoDir,
    input: Buffer.concat(chunks),
    env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" },
  });
  return execFileSync("git", ["rev-parse", `refs/heads/${ref}`], {
    cwd: repoDir,
    encoding: "utf8",
  }).trim();
}
