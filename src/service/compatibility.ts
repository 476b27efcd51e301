/**
 * Agent-aware checks (issue 14): whether an agent's build has every component type a config
 * hash needs. The needed types of a hash are derived once from its files (ConfigStore) and
 * kept while the hash is stored; an agent's inventory is derived once per AvailableComponents
 * report (agent-components.ts). Synchronous, from memory: asked on the OpAMP hot path.
 */
import type { AgentState } from "../opamp/index.js";
import { type RequiredComponent, requiredComponents } from "../validate/index.js";
import { componentInventory, missingComponents } from "./agent-components.js";
import type { ConfigStore } from "./config-store.js";

/** Hashes whose needed types are remembered; older ones are derived again when asked. */
const MAX_REMEMBERED = 512;

export class Compatibility {
  readonly #configs: ConfigStore;
  readonly #configHashOf: (hash: string) => string;
  readonly #required = new Map<string, readonly RequiredComponent[]>();

  /** `configHashOf` maps a served bundle id to its config hash (default: the hash itself). */
  constructor(configs: ConfigStore, configHashOf: (hash: string) => string = (h) => h) {
    this.#configs = configs;
    this.#configHashOf = configHashOf;
  }

  /** The component types `hash` needs; [] for an unknown hash or a non-Collector config. */
  requirements(hash: string): readonly RequiredComponent[] {
    let r = this.#required.get(hash);
    if (r) return r;
    const files = this.#configs.get(this.#configHashOf(hash));
    if (!files) return [];
    r = requiredComponents(files);
    if (this.#required.size >= MAX_REMEMBERED) {
      const oldest = this.#required.keys().next().value;
      if (oldest !== undefined) this.#required.delete(oldest);
    }
    this.#required.set(hash, r);
    return r;
  }

  /** What the agent lacks to run `hash` (`kind/type` each); [] when it can, or cannot tell. */
  missing(agent: Pick<Readonly<AgentState>, "availableComponents">, hash: string): string[] {
    const inventory = componentInventory(agent.availableComponents);
    if (!inventory) return [];
    return missingComponents(this.requirements(hash), inventory);
  }
}
