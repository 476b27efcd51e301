/**
 * Which group each agent belongs to (uid → group), and what this process knows of agents not
 * yet in a group (connected, health), so a later join carries it. In memory only: rebuilt
 * from the groups' members at start and kept in step with changes from other replicas.
 */
import type { GroupRollout, RolloutEvent } from "./model.js";

interface Facts {
  connected: boolean;
  healthy?: boolean;
  error?: string;
}

export class AgentDirectory {
  readonly #groupOf = new Map<string, string>();
  readonly #facts = new Map<string, Facts>();

  groupOf(uid: string): string | undefined {
    return this.#groupOf.get(uid);
  }

  assign(uid: string, group: string): void {
    this.#groupOf.set(uid, group);
  }

  /** Forgets `uid`'s group if it is `group`. */
  unassign(uid: string, group: string): void {
    if (this.#groupOf.get(uid) === group) this.#groupOf.delete(uid);
  }

  connected(uid: string): void {
    this.#facts.set(uid, { ...this.#facts.get(uid), connected: true });
  }

  disconnected(uid: string): void {
    this.#facts.delete(uid);
  }

  health(uid: string, healthy: boolean, error?: string): void {
    const facts = this.#facts.get(uid);
    if (facts)
      this.#facts.set(uid, { connected: facts.connected, healthy, ...(error ? { error } : {}) });
  }

  /** The events that make `uid` a member, with what is known of it. */
  joinEvents(uid: string): RolloutEvent[] {
    const events: RolloutEvent[] = [{ type: "join", uid }];
    const facts = this.#facts.get(uid);
    if (facts?.connected) events.push({ type: "connected", uid });
    if (facts?.healthy !== undefined) {
      const error = facts.error ? { error: facts.error } : {};
      events.push({ type: "health", uid, healthy: facts.healthy, ...error });
    }
    return events;
  }

  /** Every member of a loaded group belongs to it. */
  addGroup(state: GroupRollout): void {
    for (const uid of state.members.keys()) this.#groupOf.set(uid, state.group);
  }

  removeGroup(state: GroupRollout): void {
    for (const uid of state.members.keys()) this.unassign(uid, state.group);
  }

  /**
   * Follows membership changed elsewhere: `uids` are the agents whose membership may have
   * changed (a join or leave always marks its uid serve-changed), "all" to recheck everyone.
   */
  follow(before: GroupRollout, after: GroupRollout, uids: "all" | readonly string[]): void {
    const touched = uids === "all" ? [...before.members.keys(), ...after.members.keys()] : uids;
    for (const uid of touched) {
      if (after.members.has(uid)) this.#groupOf.set(uid, after.group);
      else this.unassign(uid, after.group);
    }
  }
}
