/**
 * The names of an agent's capability bits, as the status branch, the admin API and the
 * console show them. A fleet reports few distinct capability words, so each word's names are
 * computed once: rendering an agent's status file asked this for every agent at ~4 µs a call
 * (a Map built and 64 bigint shifts each time).
 *
 * Contract: names in bit order; a bit OpAMP does not name is `bit<N>` with `unknownBits`,
 * left out without. The caller owns the array it gets. At most MAX_CACHED words per mode are
 * kept (a word is agent input: past the bound, names are computed each time, nothing grows).
 */
import { AgentCapabilities } from "./capabilities.js";

const MAX_CACHED = 256;
const NAMED = new Map<bigint, string>(
  Object.entries(AgentCapabilities).map(([name, bit]) => [bit, name]),
);
/** Cached names per word, without unknown bits and with them. */
const namedOnly = new Map<bigint, readonly string[]>();
const withUnknown = new Map<bigint, readonly string[]>();

export function agentCapabilityNames(word: bigint, { unknownBits = false } = {}): string[] {
  const words = unknownBits ? withUnknown : namedOnly;
  const cached = words.get(word);
  if (cached) return [...cached];
  const names: string[] = [];
  for (let i = 0n, rest = BigInt.asUintN(64, word); rest !== 0n; i++, rest >>= 1n) {
    if ((rest & 1n) === 0n) continue;
    const name = NAMED.get(1n << i) ?? (unknownBits ? `bit${i}` : undefined);
    if (name !== undefined) names.push(name);
  }
  if (words.size < MAX_CACHED) words.set(word, names.slice());
  return names;
}
