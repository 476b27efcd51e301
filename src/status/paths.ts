/**
 * Where status files live (DESIGN §4), and the only way names from outside become paths:
 *
 *   status/fleet.yaml
 *   status/groups/<group>.yaml
 *   status/agents/<group>/<instance-uid>.yaml      unassigned: status/agents/_unassigned/
 *
 * An instance uid is used only in canonical UUID form (src/opamp `isCanonicalUid`), a group
 * name only when it follows the group-name rule (`[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63
 * characters); anything else throws UnsafeStatusNameError. `_unassigned` cannot collide with a
 * group, since group names have no underscore.
 */
import { isCanonicalUid } from "../opamp/index.js";
import { GROUP_NAME } from "../validate/group.js";
import { UnsafeStatusNameError } from "./errors.js";

export const STATUS_DIR = "status";
export const FLEET_FILE = `${STATUS_DIR}/fleet.yaml`;
export const GROUPS_DIR = `${STATUS_DIR}/groups`;
export const AGENTS_DIR = `${STATUS_DIR}/agents`;
export const UNASSIGNED = "_unassigned";

export function isGroupName(name: string): boolean {
  return name.length <= 63 && GROUP_NAME.test(name);
}

export function checkGroupName(name: string): string {
  if (!isGroupName(name)) throw new UnsafeStatusNameError("group", name);
  return name;
}

export function checkUid(uid: string): string {
  if (!isCanonicalUid(uid)) throw new UnsafeStatusNameError("instance uid", uid);
  return uid;
}

/** `status/agents/<group or _unassigned>/<uid>.yaml`. */
export function agentFilePath(group: string | null | undefined, uid: string): string {
  const folder = group == null ? UNASSIGNED : checkGroupName(group);
  return `${AGENTS_DIR}/${folder}/${checkUid(uid)}.yaml`;
}

/** `status/groups/<group>.yaml`. */
export function groupFilePath(group: string): string {
  return `${GROUPS_DIR}/${checkGroupName(group)}.yaml`;
}

export type StatusFileKind = "fleet" | "group" | "agent";

/** What a status path holds, or undefined for a path the writer does not own. */
export function kindOfPath(path: string): StatusFileKind | undefined {
  if (path === FLEET_FILE) return "fleet";
  if (/^status\/groups\/[a-z0-9-]+\.yaml$/.test(path)) return "group";
  if (/^status\/agents\/([a-z0-9-]+|_unassigned)\/[0-9a-f-]{36}\.yaml$/.test(path)) return "agent";
  return undefined;
}
