/**
 * Collector-shaped health reports for health tests: the same tree at any second (only the
 * timestamps move), with overrides, and with its maps in reverse key order.
 */
import type { ComponentHealth } from "../../src/opamp/messages.js";
import { collectorHealth } from "../../src/opamp/simulator/collector-health.js";

/** When the reports' Collector started, ns since the epoch. */
export const HEALTH_START = 1_700_000_000_000_000_000n;

/** The report at `second` after a fixed start; `override`: see collectorHealth. */
export const healthAt = (second: number, override?: Record<string, readonly [string, string]>) =>
  collectorHealth({
    startNanos: HEALTH_START,
    nowNanos: HEALTH_START + BigInt(second) * 1_000_000_000n,
    ...(override ? { override } : {}),
  });

/** The same tree with every map's keys in reverse order (as a Go encoder may send them). */
export function reversed(h: ComponentHealth): ComponentHealth {
  const map = h.componentHealthMap;
  if (!map) return h;
  const out: Record<string, ComponentHealth> = {};
  for (const k of Object.keys(map).reverse()) out[k] = reversed(map[k] as ComponentHealth);
  return { ...h, componentHealthMap: out };
}
