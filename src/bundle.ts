/**
 * A group's bundle (DESIGN §1): what a rollout moves from stable to target — its config files,
 * its connection settings (own telemetry) and its packages. The config hash stays the hash of
 * the files (config-hash.ts); the bundle has its own id.
 *
 * Bundle id:
 * - a bundle of config files alone has the config hash as its id, so a fleet that declares no
 *   telemetry and no packages rolls out, records and reports exactly what it did before;
 * - otherwise it is the lowercase hex SHA-256 of a canonical JSON document naming the config
 *   hash, the telemetry destinations as declared (secret references unresolved: the id is
 *   written to Git, and a resolved secret must never be) and the packages, sorted by name.
 * Deterministic, independent of key order and of the commit that carried it.
 */
import { createHash } from "node:crypto";
import type { PackageSpec, TelemetryDestination } from "./validate/model.js";

export type TelemetryParts = Partial<Record<"metrics" | "traces" | "logs", TelemetryDestination>>;

/** The parts of a bundle beyond its files. */
export interface BundleParts {
  /** The config hash of the bundle's files. */
  configHash: string;
  telemetry: TelemetryParts;
  packages: readonly PackageSpec[];
}

/** True when the bundle holds config files alone (its id is the config hash). */
export function isConfigOnly(parts: Omit<BundleParts, "configHash">): boolean {
  return (
    Object.values(parts.telemetry).every((d) => d === undefined) && parts.packages.length === 0
  );
}

/** The bundle id (see the module comment). */
export function bundleId(parts: BundleParts): string {
  if (isConfigOnly(parts)) return parts.configHash;
  const doc = {
    v: 1,
    config: parts.configHash,
    telemetry: parts.telemetry,
    packages: [...parts.packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
  return createHash("sha256").update(canonicalJson(doc)).digest("hex");
}

/** JSON with object keys sorted at every level and undefined members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}
