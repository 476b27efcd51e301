/**
 * A RolloutStore on a fresh test prefix, with every change message it publishes collected,
 * and agents arriving as the OpAMP side reports them (join, then connected).
 */
import { Redis } from "ioredis";
import type { RolloutEvent } from "../../../src/queue/model.js";
import { type ChangeMessage, RolloutStore } from "../../../src/queue/store.js";
import { type TestRedis, testRedis } from "../../helpers/redis.js";
import { REDIS_URL } from "./fleet.js";

export interface WatchedStore {
  r: TestRedis;
  store: RolloutStore;
  /** Change messages in publish order. */
  messages: ChangeMessage[];
  close(): Promise<void>;
}

/** A store whose channel is subscribed before it returns; close() drops both connections. */
export async function watchedStore(): Promise<WatchedStore> {
  const r = await testRedis();
  const store = new RolloutStore(r.redis, r.prefix);
  const sub = new Redis(REDIS_URL);
  const messages: ChangeMessage[] = [];
  await sub.subscribe(store.keys.channel);
  sub.on("message", (_c, text: string) => messages.push(JSON.parse(text)));
  return {
    r,
    store,
    messages,
    close: async () => {
      sub.disconnect();
      await r.close();
    },
  };
}

/** The events of `uids` joining the group and connecting, in that order per agent. */
export const arrivals = (uids: readonly string[]): RolloutEvent[] =>
  uids.flatMap((uid): RolloutEvent[] => [
    { type: "join", uid },
    { type: "connected", uid },
  ]);
