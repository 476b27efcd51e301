/**
 * `opamp-gitops plan --base <ref> --head <ref> [--repo <dir>] [--path <dir>] [--api-url …]
 * [--api-token-file …] [--status-ref opamp-status] [--format text|json|markdown|github]
 * [--secret-dir …] [--secret-env-prefix …] [--settings …]`:
 * a pull request's preview of what a merge does to the fleet (DESIGN §6). Reads only Git
 * objects through src/sync and validates with the code serve runs (plan-build.ts), with the
 * secret-reference policy serve reads from the same flags, variables and settings file.
 *
 * Exit codes: 0 the head is valid; 1 it is not; 2 usage (unknown ref, not a repository, bad
 * flag); 3 `--api-url` was given and the service cannot be reached or refused the token.
 */
import {
  type ClientFlags,
  loadClientSettings,
  type SecretRefFlags,
  SettingsError,
  secretRefSettings,
} from "../settings.js";
import {
  NotARepositoryError,
  PlanSource,
  RevisionNotFoundError,
  UnsafePathError,
} from "../sync/read-only.js";
import { ApiRefusedError, ApiUnreachableError } from "./api-client.js";
import { agentsFromApi, agentsFromStatusBranch } from "./plan-agents.js";
import { buildPlan } from "./plan-build.js";
import { formatPlanGithub, writeJobSummary } from "./plan-github.js";
import { formatPlanMarkdown } from "./plan-markdown.js";
import { PLAN_FORMATS, type PlanFormat } from "./plan-model.js";
import { formatPlanJson, formatPlanText } from "./plan-text.js";
import { otelcolChecker } from "./validate.js";

export { PLAN_FORMATS, type PlanFormat } from "./plan-model.js";

/**
 * `secretDir`, `secretEnvPrefix`, `settings` (SecretRefFlags): the service's secret-reference
 * policy, read as serve reads it, so the plan refuses the references serve would refuse.
 */
export interface PlanOptions extends ClientFlags, SecretRefFlags {
  base: string;
  head: string;
  /** The repository (work tree or bare). Default: the current folder. */
  repo?: string;
  /** The watched sub-folder, as serve's --path. */
  path?: string;
  /** Status branch read when no --api-url is given. Default opamp-status. */
  statusRef?: string;
  format: PlanFormat;
  /** `--otelcol <path>` / `<name>=<path>`: Collector binaries that also check the head. */
  otelcol?: string[];
}

type Out = { write(s: string): unknown };

export async function runPlan(
  opts: PlanOptions,
  out: Out,
  err: Out,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const usage = (message: string) => {
    err.write(`opamp-gitops plan: ${message}\n`);
    return 2;
  };
  if (!(PLAN_FORMATS as readonly string[]).includes(opts.format))
    return usage(`--format must be one of ${PLAN_FORMATS.join(", ")}, not "${opts.format}"`);
  const otelcol = otelcolChecker(opts.otelcol);
  if ("problem" in otelcol) return usage(otelcol.problem);
  let settings: ReturnType<typeof loadClientSettings> | undefined;
  let secretRefs: ReturnType<typeof secretRefSettings>;
  try {
    secretRefs = secretRefSettings(opts, env);
    // Offline (the status branch) unless a service is named.
    if (opts.apiUrl ?? env.OPAMP_GITOPS_API_URL) settings = loadClientSettings(opts, env);
  } catch (e) {
    if (e instanceof SettingsError) return usage(e.message);
    throw e;
  }
  try {
    const source = await PlanSource.open(opts.repo ?? ".", opts.path ?? "");
    const statusRef = opts.statusRef ?? "opamp-status";
    const plan = await buildPlan({
      source,
      base: opts.base,
      head: opts.head,
      root: (opts.path ?? "").replace(/^\/+|\/+$/g, ""),
      secretRefs,
      ...(otelcol.checker ? { collector: otelcol.checker } : {}),
      agents: (wanted) =>
        settings ? agentsFromApi(settings) : agentsFromStatusBranch(source, statusRef, wanted),
    });
    switch (opts.format) {
      case "json":
        out.write(formatPlanJson(plan));
        break;
      case "markdown":
        out.write(formatPlanMarkdown(plan));
        break;
      case "github":
        out.write(formatPlanGithub(plan));
        await writeJobSummary(plan, env);
        break;
      default:
        out.write(formatPlanText(plan));
    }
    return plan.valid ? 0 : 1;
  } catch (e) {
    if (
      e instanceof RevisionNotFoundError ||
      e instanceof NotARepositoryError ||
      e instanceof UnsafePathError
    )
      return usage(`${e.message}${e instanceof NotARepositoryError ? " (--repo)" : ""}`);
    if (e instanceof ApiUnreachableError || e instanceof ApiRefusedError) {
      err.write(`opamp-gitops plan: ${e.message}\n`);
      return 3;
    }
    throw e;
  }
}
