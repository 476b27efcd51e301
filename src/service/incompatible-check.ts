/**
 * The all-incompatible check at rollout time (issue 14): a valid commit that changes a group's
 * config so that every agent of the group lacks a component type it needs would roll out to
 * nobody, so it is reported as a validation error (`AGENTS_INCOMPATIBLE`): the commit is
 * stalled like any invalid one, the last valid state keeps being served, and the finding
 * reaches the log, the status branch and the API as other validation failures do.
 *
 * The group's agents are the ones placed in it now: its rollout members (any replica) and
 * the agents listed as incompatible with its current config. Agents that report no
 * components count as compatible, so a group of such agents never fails this check. Groups
 * whose hash did not change are not checked: a served config is never stopped by it.
 */
import type { AvailableComponents } from "../opamp/index.js";
import type { FleetDesiredState } from "../sync/index.js";
import type { Finding, FleetSpec } from "../validate/index.js";
import { requiredComponents } from "../validate/index.js";
import { componentInventory, missingComponents } from "./agent-components.js";

export interface GroupAgentsSource {
  /** Uids of the group's agents (members and listed incompatible ones). */
  agentsOf(group: string): Promise<string[]>;
  /** The stored AvailableComponents of each uid. */
  components(uids: readonly string[]): Promise<Map<string, AvailableComponents | null>>;
}

/** How many agent uids an AGENTS_INCOMPATIBLE message names. */
const EXAMPLES = 5;

export async function incompatibleFindings(
  fleet: FleetSpec,
  current: FleetDesiredState | undefined,
  source: GroupAgentsSource,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const spec of fleet.groups.values()) {
    if (spec.schema !== "otelcol") continue;
    if (current?.groups.get(spec.name)?.configHash === spec.configHash) continue;
    const required = requiredComponents(spec.files, `groups/${spec.name}/`);
    if (required.length === 0) continue;
    const uids = await source.agentsOf(spec.name);
    if (uids.length === 0) continue;
    const reported = await source.components(uids);
    const lacking = new Map<string, number>();
    const examples: string[] = [];
    let incompatible = 0;
    for (const uid of uids) {
      const missing = missingComponents(required, componentInventory(reported.get(uid)));
      if (missing.length === 0) break; // one agent can run it: the rollout has someone
      incompatible++;
      if (examples.length < EXAMPLES) examples.push(uid);
      for (const m of missing) lacking.set(m, (lacking.get(m) ?? 0) + 1);
    }
    if (incompatible < uids.length) continue;
    const first = required.find((r) => lacking.has(`${r.kind}/${r.type}`)) ?? required[0];
    if (!first) continue;
    const list = [...lacking].map(([c, n]) => `${c} (${n} of ${uids.length})`).join(", ");
    findings.push({
      file: first.file,
      line: first.line,
      column: first.column,
      severity: "error",
      code: "AGENTS_INCOMPATIBLE",
      message: `every agent of group "${spec.name}" (${uids.length}) lacks a component type this config uses: ${list}; the commit is not rolled out. Use components their build has, or upgrade the agents first (e.g. ${examples.join(", ")})`,
      data: {
        group: spec.name,
        agents: uids.length,
        missing: Object.fromEntries(lacking),
        examples,
      },
    });
  }
  return findings;
}
