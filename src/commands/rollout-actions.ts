/** The `rollout` command's actions, apart from its module so the CLI can list them unloaded. */
export const ROLLOUT_ACTIONS = ["status", "pause", "resume", "promote", "abort"] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];
