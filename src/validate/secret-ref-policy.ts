/**
 * Which secret references (`${env:NAME}`, `${file:/path}` in a bundle's telemetry) the service
 * resolves. A repository writer chooses them, and the resolved value is sent to an endpoint
 * the same writer chooses: without a policy any variable or readable file of the service's
 * host could be sent out. So only variables named with a prefix (`--secret-env-prefix`,
 * default OPAMP_GITOPS_SECRET_) and only files under one folder (`--secret-dir`; none by
 * default, which refuses every file reference) are allowed.
 *
 * Here a reference is judged by its text, as the PR gate can: `..` is resolved, symlinks are
 * not (they exist only on the service's host, which resolves them with realpath before reading:
 * src/service/secret-refs.ts).
 */
import { isAbsolute, relative, resolve, sep } from "node:path";

export interface SecretRefPolicy {
  /** `${env:NAME}` is allowed only for names starting with this. */
  envPrefix: string;
  /** `${file:/path}` is allowed only under this absolute folder; undefined: never. */
  dir?: string;
}

export const DEFAULT_SECRET_ENV_PREFIX = "OPAMP_GITOPS_SECRET_";

/** The defaults: the prefix above, no secret folder. */
export const DEFAULT_SECRET_REF_POLICY: Readonly<SecretRefPolicy> = {
  envPrefix: DEFAULT_SECRET_ENV_PREFIX,
};

/** True when `path` is strictly inside `dir` (both absolute and free of `..`). */
export function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** Why `policy` refuses the reference `${kind:arg}`; undefined when it allows it. */
export function refusedRef(
  kind: string,
  arg: string,
  policy: Readonly<SecretRefPolicy>,
): string | undefined {
  if (kind === "env")
    return arg.startsWith(policy.envPrefix)
      ? undefined
      : `\${env:${arg}} is refused: only environment variables whose names start with ${policy.envPrefix} may be referenced (--secret-env-prefix), so that no other secret of the service can be sent out`;
  if (policy.dir === undefined)
    return `\${file:${arg}} is refused: the service reads no secret file unless it is started with --secret-dir <folder>, and then only files under that folder`;
  return isWithin(resolve(arg), resolve(policy.dir))
    ? undefined
    : `\${file:${arg}} is refused: only files under ${policy.dir} (--secret-dir) may be referenced`;
}
