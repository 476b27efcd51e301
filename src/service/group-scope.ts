/**
 * Per-group credentials: what the opaque scopes of src/opamp mean to the service. A scope is
 * `groups=<name>[,<name>…]`: the credential may be served those groups only. An agent carries
 * one scope per credential that has one (its token's, its certificate's); it may be served a
 * group every one of them allows. No scope at all allows every group.
 */
import type { CertificateScope } from "../opamp/index.js";

/** A scope that is not `groups=a,b`, or names no group. */
export class GroupScopeError extends Error {
  readonly code = "GROUP_SCOPE_INVALID";
  constructor(scope: string, why: string) {
    super(`"${scope}" ${why}; expected groups=<group>[,<group>…]`);
    this.name = "GroupScopeError";
  }
}

const GROUP = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/**
 * The groups of a scope. `allowEmpty` accepts `groups=` (no group at all), which the
 * service uses for certificates that the certificate map does not name.
 */
export function parseGroupScope(scope: string, allowEmpty = false): ReadonlySet<string> {
  const m = /^groups=(.*)$/.exec(scope.trim());
  if (!m) throw new GroupScopeError(scope, "is not a group scope");
  const names = (m[1] as string)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 0 && !allowEmpty) throw new GroupScopeError(scope, "names no group");
  for (const n of names)
    if (!GROUP.test(n)) throw new GroupScopeError(scope, `has "${n}", which is not a group name`);
  return new Set(names);
}

/** The scope text for a list of groups. */
export function groupScope(groups: readonly string[]): string {
  return `groups=${groups.join(",")}`;
}

/**
 * Decides whether scopes allow a group. Parsed scopes are cached (a fleet shares a few
 * tokens); a scope that does not parse allows nothing (it cannot come from a checked file).
 */
export class GroupScopes {
  readonly #parsed = new Map<string, ReadonlySet<string> | null>();

  allows(scopes: readonly string[], group: string): boolean {
    for (const scope of scopes) {
      let groups = this.#parsed.get(scope);
      if (groups === undefined) {
        try {
          groups = parseGroupScope(scope, true);
        } catch {
          groups = null;
        }
        if (this.#parsed.size > 10_000) this.#parsed.clear(); // bounded whatever is stored
        this.#parsed.set(scope, groups);
      }
      if (!groups?.has(group)) return false;
    }
    return true;
  }
}

/**
 * The certificate scope from the `opampClientGroups` setting: certificate name (subject CN
 * or subjectAltName value) → groups. The first of a certificate's names that the map holds
 * decides; a certificate it does not name gets the `"*"` entry, or no group at all. A list
 * holding `"*"` allows every group.
 */
export function certificateGroups(
  map: Readonly<Record<string, readonly string[]>>,
): CertificateScope {
  const fallback = Object.hasOwn(map, "*") ? map["*"] : [];
  const scope = (groups: readonly string[]) =>
    groups.includes("*") ? undefined : groupScope(groups);
  return (names) => {
    for (const name of names)
      if (Object.hasOwn(map, name) && name !== "*") return scope(map[name] ?? []);
    return scope(fallback ?? []);
  };
}
