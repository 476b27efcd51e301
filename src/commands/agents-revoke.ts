/**
 * `opamp-gitops agents revoke <uid>`: revokes an agent's issued certificates and per-agent
 * tokens through the admin API (POST /api/v1/agents/<uid>/revoke). Its connections are closed
 * at once and its credentials refused from then on; who asked is recorded. Exit codes as for
 * the other client commands (rollout.ts): 0 done, 1 refused, 2 usage, 3 unreachable.
 */
import { type ClientOptions, run } from "./rollout.js";

type Out = { write(s: string): unknown };

interface Revoked {
  instanceUid: string;
  revoked: { at: string; by: string };
}

export function runAgentRevoke(
  uid: string,
  opts: ClientOptions,
  out: Out,
  err: Out,
): Promise<number> {
  return run(opts, err, async (api) => {
    const body = await api.post<Revoked>(
      `/api/v1/agents/${encodeURIComponent(uid)}/revoke`,
      (b) => typeof b === "object" && b !== null && "revoked" in b,
    );
    out.write(
      opts.format === "json"
        ? `${JSON.stringify(body, null, 2)}\n`
        : `revoked ${body.instanceUid} (at ${body.revoked.at} by ${body.revoked.by})\n`,
    );
  });
}
