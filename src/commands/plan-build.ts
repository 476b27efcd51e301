/**
 * Builds the plan of a change (plan-model.ts) from two commits: what serve would do if the
 * head replaced the base.
 *
 * - Which groups it touches: folders whose Git tree ids differ (added, removed, changed). A
 *   change to anything else under the watched root (fleet.yaml, a JSON Schema) revalidates
 *   every group, and a group whose served spec then differs is listed ("policy").
 * - Validation: the same validateSnapshot serve runs, on a snapshot of the head holding
 *   fleet.yaml and the touched groups (the others are byte-for-byte the base's; `validate`
 *   in the same pipeline covers the whole tree). The base is validated the same way for the
 *   hashes before, sharing the cache.
 * - Agents: when the change can move agents (a touched group's selector or priority changed,
 *   a group added or removed), each known agent is matched (src/sync GroupMatcher, as serve
 *   matches) against every selector of the base and of the head, and every group that gains or
 *   loses one is listed. Otherwise nobody moves, and the touched groups' agents are counted
 *   where serve placed them (on the status branch: the entries of status/agents/<group>/).
 * - Rollouts: a valid head whose group's config hash differs from the base's starts one.
 * - Secrets: plaintext-secret findings of the head that the base does not have.
 */

import { compileMatcher, type KnownAgent, type PlanSource } from "../sync/read-only.js";
import {
  type CollectorChecker,
  type Finding,
  type GroupFolder,
  type GroupSelector,
  type GroupSpec,
  inventoryOf,
  missingComponents,
  type RepositorySnapshot,
  readGroupSelector,
  requiredComponents,
  type SecretRefPolicy,
  type ValidateOptions,
  ValidationCache,
  type ValidationReport,
  validateSnapshot,
} from "../validate/index.js";
import type { AgentsRead, AgentsWanted } from "./plan-agents.js";
import type { AgentMoves, FileChange, GroupPlan, IncompatiblePlan, Plan } from "./plan-model.js";
import { previewRollout } from "./plan-rollout.js";
import { fileChange } from "./unified-diff.js";

const UNASSIGNED = "_unassigned";
const EXAMPLES = 5;

export interface PlanInput {
  source: PlanSource;
  base: string;
  head: string;
  /** Today's agents; asked for after the commits, so a bad ref fails before any network call. */
  agents: (wanted: AgentsWanted) => Promise<AgentsRead>;
  /** The watched root inside the repository ("" = its root), for paths in diffs. */
  root?: string;
  /** `--otelcol`: the head's touched groups are also checked by Collector binaries. */
  collector?: CollectorChecker;
  /** The service's secret-reference policy. Default: DEFAULT_SECRET_REF_POLICY. */
  secretRefs?: Readonly<SecretRefPolicy>;
}

function moves(): AgentMoves & { all: string[] } {
  return { count: 0, by: {}, examples: [], all: [] };
}

function addMove(m: AgentMoves & { all: string[] }, other: string, uid: string): void {
  m.count++;
  m.by[other] = (m.by[other] ?? 0) + 1;
  m.all.push(uid);
}

function finish(m: AgentMoves & { all: string[] }): AgentMoves {
  return { count: m.count, by: m.by, examples: m.all.sort().slice(0, EXAMPLES) };
}

const sameSelector = (a?: GroupSelector, b?: GroupSelector) =>
  JSON.stringify(a?.selector ?? null) === JSON.stringify(b?.selector ?? null);

/** What a served spec is made of, to tell whether fleet.yaml defaults changed a group. */
const specKey = (s?: GroupSpec) =>
  s
    ? JSON.stringify([
        s.configHash,
        s.rollout,
        s.heartbeatIntervalSeconds,
        s.telemetry,
        s.selector,
        s.priority,
      ])
    : "";

export async function buildPlan(input: PlanInput): Promise<Plan> {
  const started = performance.now();
  const { source } = input;
  const prefix = input.root ? `${input.root}/` : "";
  const baseCommit = await source.resolve(input.base);
  const headCommit = await source.resolve(input.head);
  const [lb, lh] = await Promise.all([source.list(baseCommit), source.list(headCommit)]);

  const rootPaths = [...new Set([...lb.root.keys(), ...lh.root.keys()])].sort();
  const rootChanged = rootPaths.filter((p) => lb.root.get(p) !== lh.root.get(p));
  const names = [...new Set([...lb.groups.keys(), ...lh.groups.keys()])].sort();
  const folderChanged = new Set(names.filter((n) => lb.groups.get(n) !== lh.groups.get(n)));
  const revalidate = rootChanged.length > 0 ? new Set(names) : folderChanged;

  const [rb, rh] = await Promise.all([
    source.read(baseCommit, revalidate),
    source.read(headCommit, revalidate),
  ]);
  const cache = new ValidationCache();
  const policy = input.secretRefs ? { secretRefs: input.secretRefs } : {};
  const head = await validateSnapshot(rh.snapshot, {
    findings: rh.findings,
    cache,
    ...policy,
    ...(input.collector ? { collector: input.collector } : {}),
  });
  const base: ValidationReport = await validateSnapshot(rb.snapshot, {
    findings: rb.findings,
    cache,
    ...policy,
  });
  // An invalid head has no fleet; its error-free groups still have a hash to show.
  const validGroups = (snapshot: RepositorySnapshot, report: ValidationReport) =>
    specsOfValidGroups(snapshot, report, { cache, ...policy });
  const headSpecs = head.fleet?.groups ?? (await validGroups(rh.snapshot, head));
  const baseSpecs = base.fleet?.groups ?? (await validGroups(rb.snapshot, base));

  // Agents can change group only when a touched group's selector or priority changes, or a
  // group comes or goes: untouched folders are the same bytes on both sides. Otherwise the
  // plan needs no selector of another group and no agent's attributes, only counts.
  const touchedSelector = (folders: Map<string, GroupFolder>, name: string) => {
    const folder = folders.get(name);
    return folder ? readGroupSelector(name, folder.groupYaml) : undefined;
  };
  const selKey = (s?: GroupSelector) => JSON.stringify(s ?? null);
  const movable = [...folderChanged].some(
    (n) =>
      !lb.groups.has(n) ||
      !lh.groups.has(n) ||
      selKey(touchedSelector(rb.snapshot.groups, n)) !==
        selKey(touchedSelector(rh.snapshot.groups, n)),
  );
  const listed = new Set<string>(folderChanged);
  if (rootChanged.length > 0)
    for (const n of names)
      if (specKey(baseSpecs.get(n)) !== specKey(headSpecs.get(n))) listed.add(n);

  // Selectors of every group on both sides, when agents may move; an untouched folder's
  // group.yaml is one blob for both sides, read once.
  const shared = new Map<string, GroupSelector | undefined>();
  const selectors = async (
    listing: typeof lb,
    folders: Map<string, GroupFolder>,
  ): Promise<Map<string, GroupSelector>> => {
    const out = new Map<string, GroupSelector>();
    await Promise.all(
      [...listing.groups].map(async ([name, tree]) => {
        if (!movable && !folders.has(name)) return;
        let sel: GroupSelector | undefined;
        if (folders.has(name)) sel = touchedSelector(folders, name);
        else {
          if (!shared.has(tree))
            shared.set(tree, readGroupSelector(name, await source.groupYaml(tree)));
          sel = shared.get(tree);
        }
        if (sel) out.set(name, sel);
      }),
    );
    return out;
  };
  const selBefore = await selectors(lb, rb.snapshot.groups);
  const selAfter = await selectors(lh, rh.snapshot.groups);

  const {
    agents = [],
    counts: placed,
    info,
  } = await input.agents({
    attributes: movable,
    groups: [...listed],
  });
  const before = compileMatcher([...selBefore].map(([name, s]) => ({ name, ...s })));
  const after = compileMatcher([...selAfter].map(([name, s]) => ({ name, ...s })));
  const counts = new Map<string, { before: number; after: number }>();
  const joined = new Map<string, ReturnType<typeof moves>>();
  const left = new Map<string, ReturnType<typeof moves>>();
  const unassigned = moves();
  const tally = (g: string, side: "before" | "after") => {
    const c = counts.get(g) ?? { before: 0, after: 0 };
    c[side]++;
    counts.set(g, c);
  };
  const get = (m: Map<string, ReturnType<typeof moves>>, g: string) => {
    let v = m.get(g);
    if (!v) {
      v = moves();
      m.set(g, v);
    }
    return v;
  };
  for (const [g, n] of placed ?? []) counts.set(g, { before: n, after: n });
  // Agents with known components, by their group after the merge (incompatible agents).
  const withComponents = new Map<string, KnownAgent[]>();
  const keep = (g: string, agent: KnownAgent) => {
    if (!agent.components) return;
    const list = withComponents.get(g) ?? [];
    list.push(agent);
    withComponents.set(g, list);
  };
  for (const agent of agents as KnownAgent[]) {
    if (!movable) {
      // Nobody moves: the group serve placed the agent in is its group before and after.
      // With counts given (a status branch's folders), agents come only for their components.
      const g = agent.group ?? UNASSIGNED;
      if (!placed) {
        tally(g, "before");
        tally(g, "after");
      }
      keep(g, agent);
      continue;
    }
    const was = before.match(agent.attributes).group ?? UNASSIGNED;
    const will = after.match(agent.attributes).group ?? UNASSIGNED;
    keep(will, agent);
    tally(was, "before");
    tally(will, "after");
    if (was === will) continue;
    addMove(get(left, was), will, agent.instanceUid);
    addMove(get(joined, will), was, agent.instanceUid);
    if (will === UNASSIGNED) addMove(unassigned, was, agent.instanceUid);
  }
  for (const n of [...joined.keys(), ...left.keys()]) if (n !== UNASSIGNED) listed.add(n);

  const groups: GroupPlan[] = [];
  let agentErrors = 0;
  for (const name of [...listed].sort()) {
    const dir = `groups/${name}/`;
    const inBase = lb.groups.has(name);
    const inHead = lh.groups.has(name);
    const findings = head.findings.filter(
      (f) => f.file.startsWith(dir) || f.file === dir.slice(0, -1),
    );
    const errors = findings.filter((f) => f.severity === "error").length;
    const specBefore = baseSpecs.get(name);
    const specAfter = headSpecs.get(name);
    const files = folderChanged.has(name)
      ? folderDiff(prefix, name, rb.snapshot.groups.get(name), rh.snapshot.groups.get(name))
      : [];
    const c = counts.get(name) ?? { before: 0, after: 0 };
    const plan: GroupPlan = {
      name,
      change: !inBase
        ? "added"
        : !inHead
          ? "removed"
          : folderChanged.has(name)
            ? "changed"
            : specKey(specBefore) !== specKey(specAfter) && rootChanged.length > 0
              ? "policy"
              : "agents",
      findings,
      errors,
      warnings: findings.length - errors,
      hash: { before: specBefore?.configHash ?? null, after: specAfter?.configHash ?? null },
      files,
      matching: {
        selectorChanged: !sameSelector(selBefore.get(name), selAfter.get(name)),
        priority: {
          before: selBefore.get(name)?.priority ?? null,
          after: selAfter.get(name)?.priority ?? null,
        },
      },
      agents: {
        before: c.before,
        after: c.after,
        joined: finish(joined.get(name) ?? moves()),
        left: finish(left.get(name) ?? moves()),
      },
      secrets: addedSecrets(findings, base.findings),
      incompatible: incompatibleAgents(specAfter, withComponents.get(name) ?? [], c.after),
    };
    if (head.fleet && specAfter && specAfter.configHash !== specBefore?.configHash) {
      plan.rollout = previewRollout(specAfter, headCommit, c.after, !inBase || !specBefore);
      const refused = allIncompatibleFinding(specAfter, plan.incompatible);
      if (refused) {
        plan.findings.push(refused);
        plan.errors++;
        agentErrors++;
      }
    }
    groups.push(plan);
  }

  const outside = (f: Finding) => !f.file.startsWith("groups/") || f.file === "groups";
  const files: FileChange[] = [];
  for (const path of rootChanged) {
    if (path !== "fleet.yaml") {
      files.push({
        path: `${prefix}${path}`,
        change: !lb.root.has(path) ? "added" : !lh.root.has(path) ? "removed" : "modified",
        diff: "",
        additions: 0,
        deletions: 0,
        binary: true,
        truncated: false,
      });
      continue;
    }
    files.push(fileChange(`${prefix}fleet.yaml`, rb.snapshot.fleet, rh.snapshot.fleet));
  }
  return {
    root: input.root ?? "",
    base: { ref: input.base, commit: baseCommit },
    head: { ref: input.head, commit: headCommit },
    valid: head.errors + agentErrors === 0,
    errors: head.errors + agentErrors,
    warnings: head.warnings,
    findings: head.findings.filter(outside),
    files,
    groups,
    agents: info,
    newlyUnassigned: finish(unassigned),
    untouchedGroups: names.length - revalidate.size,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Specs of the groups without an error in `report`, validated alone (from the cache). */
async function specsOfValidGroups(
  snapshot: RepositorySnapshot,
  report: ValidationReport,
  options: ValidateOptions,
): Promise<Map<string, GroupSpec>> {
  const broken = new Set(
    report.findings.filter((f) => f.severity === "error").map((f) => f.file.split("/")[1]),
  );
  if (report.findings.some((f) => f.severity === "error" && !f.file.startsWith("groups/")))
    return new Map();
  const groups = new Map([...snapshot.groups].filter(([name]) => !broken.has(name)));
  const alone = await validateSnapshot({ ...snapshot, groups }, options);
  return alone.fleet?.groups ?? new Map();
}

/** Every file of a group folder (group.yaml included) that differs between the two sides. */
function folderDiff(
  prefix: string,
  name: string,
  a: GroupFolder | undefined,
  b: GroupFolder | undefined,
): FileChange[] {
  const contents = (f: GroupFolder | undefined) => {
    const m = new Map<string, Uint8Array>(f?.files ?? []);
    if (f?.groupYaml) m.set("group.yaml", f.groupYaml);
    return m;
  };
  const ca = contents(a);
  const cb = contents(b);
  const out: FileChange[] = [];
  for (const file of [...new Set([...ca.keys(), ...cb.keys()])].sort()) {
    const x = ca.get(file);
    const y = cb.get(file);
    if (x && y && Buffer.from(x).equals(y)) continue;
    out.push(fileChange(`${prefix}groups/${name}/${file}`, x, y));
  }
  return out;
}

/** Plaintext-secret findings of the head that the base did not have (same file, same words). */
function addedSecrets(headFindings: Finding[], baseFindings: Finding[]) {
  const key = (f: Finding) => `${f.file}\0${f.message}`;
  const had = new Set(baseFindings.filter((f) => f.code === "OTELCOL_PLAINTEXT_SECRET").map(key));
  return headFindings
    .filter((f) => f.code === "OTELCOL_PLAINTEXT_SECRET" && !had.has(key(f)))
    .map((f) => ({ file: f.file, line: f.line, column: f.column, message: f.message }));
}

/** The agents of `agents` (one group, after the merge) that lack a type `spec` needs. */
function incompatibleAgents(
  spec: GroupSpec | undefined,
  agents: readonly KnownAgent[],
  total: number,
): IncompatiblePlan {
  const plan: IncompatiblePlan = { count: 0, known: 0, missing: {}, examples: [], all: false };
  if (spec?.schema !== "otelcol") return plan;
  const required = requiredComponents(spec.files);
  const lacking: { uid: string; missing: string[] }[] = [];
  for (const agent of agents) {
    const inventory = inventoryOf(agent.components ?? {});
    if (!inventory) continue;
    plan.known++;
    const missing = missingComponents(required, inventory);
    if (missing.length === 0) continue;
    lacking.push({ uid: agent.instanceUid, missing });
    for (const m of missing) plan.missing[m] = (plan.missing[m] ?? 0) + 1;
  }
  plan.count = lacking.length;
  plan.examples = lacking.sort((a, b) => (a.uid < b.uid ? -1 : 1)).slice(0, EXAMPLES);
  plan.all = plan.count > 0 && plan.count >= total;
  return plan;
}

/**
 * Serve's all-incompatible check (src/service/incompatible-check.ts) on the plan's agents: an
 * AGENTS_INCOMPATIBLE error when every agent of the group lacks a type the new config uses.
 */
function allIncompatibleFinding(spec: GroupSpec, inc: IncompatiblePlan): Finding | undefined {
  if (!inc.all) return undefined;
  const needed = requiredComponents(spec.files, `groups/${spec.name}/`);
  const first = needed.find((r) => inc.missing[`${r.kind}/${r.type}`]) ?? needed[0];
  if (!first) return undefined;
  const list = Object.entries(inc.missing)
    .map(([c, n]) => `${c} (${n} of ${inc.count})`)
    .join(", ");
  return {
    file: first.file,
    line: first.line,
    column: first.column,
    severity: "error",
    code: "AGENTS_INCOMPATIBLE",
    message: `every agent of group "${spec.name}" (${inc.count}) lacks a component type this config uses: ${list}; serve will not roll it out`,
    data: { group: spec.name, agents: inc.count, missing: inc.missing },
  };
}
