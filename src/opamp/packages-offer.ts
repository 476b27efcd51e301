/**
 * Packages (PackagesAvailable): the desired state's packages offered to an agent that accepts
 * packages, each with its own hash and all under `all_packages_hash`, so that an agent (and
 * this server) can tell which offer a PackageStatuses report answers.
 *
 * - package hash = SHA-256 of "name\0type\0version\0sha256\0url\0signature";
 * - all_packages_hash = SHA-256 over the package hashes in name order.
 * Offered when the agent's reported `server_provided_all_packages_hash` differs (it has not
 * processed this offer yet) and not already on this session; so never again after it reported
 * on it, whatever it reported (an install_failed is not re-offered in a loop). A desired state
 * with no packages offers nothing (an empty offer would tell the agent to remove its packages).
 */
import { createHash } from "node:crypto";
import type { AgentState } from "./agent-state.js";
import { AgentCapabilities, hasFlag, PackageType } from "./capabilities.js";
import type { PackageOffer } from "./desired.js";
import type { PackageStatusesMessage, PackagesAvailable } from "./messages.js";

export function packageHash(p: PackageOffer): Buffer {
  return createHash("sha256")
    .update([p.name, p.type, p.version, p.sha256, p.url, p.signature ?? ""].join("\0"))
    .digest();
}

/** What a list of packages offers, whoever the agent: computed once per list object. */
interface PackagesMemo {
  /** all_packages_hash, hex and bytes. */
  hex: string;
  bytes: Buffer;
  offer: PackagesAvailable;
}

/**
 * Per list of packages (desired states hand out the same list object for as long as it holds,
 * and never change one in place: see DesiredState): its hashes and offer, so that a message
 * costs no hashing.
 */
const memo = new WeakMap<readonly PackageOffer[], PackagesMemo>();

function memoOf(packages: readonly PackageOffer[]): PackagesMemo {
  let m = memo.get(packages);
  if (m !== undefined) return m;
  const hashes = new Map(packages.map((p) => [p, packageHash(p)]));
  const h = createHash("sha256");
  for (const p of [...packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
    h.update(p.name)
      .update("\0")
      .update(hashes.get(p) as Buffer);
  const bytes = h.digest();
  const out: PackagesAvailable["packages"] = {};
  for (const p of packages) {
    out[p.name] = {
      type: p.type === "top-level" ? PackageType.TopLevel : PackageType.Addon,
      version: p.version,
      file: {
        downloadUrl: p.url,
        contentHash: Buffer.from(p.sha256, "hex"),
        ...(p.signature ? { signature: Buffer.from(p.signature, "base64") } : {}),
      },
      hash: hashes.get(p) as Buffer,
    };
  }
  m = { hex: bytes.toString("hex"), bytes, offer: { packages: out, allPackagesHash: bytes } };
  memo.set(packages, m);
  return m;
}

/** all_packages_hash of `packages` (hex). */
export function allPackagesHash(packages: readonly PackageOffer[]): string {
  return memoOf(packages).hex;
}

/** The all-packages hash the agent last reported processing (hex, "" when none). */
export function reportedPackagesHash(agent: Readonly<AgentState>): string {
  const h = reportedBytes(agent);
  return h && h.length > 0 ? Buffer.from(h).toString("hex") : "";
}

function reportedBytes(agent: Readonly<AgentState>): Uint8Array | undefined {
  const statuses = agent.packageStatuses as PackageStatusesMessage | null;
  return statuses?.serverProvidedAllPackagesHash;
}

/**
 * The packages to offer, or undefined. The offer object is shared by every agent offered the
 * same list: callers encode it and never change it.
 */
export function packagesOffer(
  agent: Readonly<AgentState>,
  packages: readonly PackageOffer[] | undefined,
  offeredHash: string | null,
): PackagesAvailable | undefined {
  if (!packages || packages.length === 0) return undefined;
  if (!hasFlag(agent.capabilities, AgentCapabilities.AcceptsPackages)) return undefined;
  const m = memoOf(packages);
  if (m.hex === offeredHash) return undefined;
  // An absent bytes field decodes as protobufjs' default, an empty Array: compare lengths first.
  const reported = reportedBytes(agent);
  if (reported?.length === m.bytes.length && m.bytes.equals(Buffer.from(reported)))
    return undefined;
  return m.offer;
}
