/**
 * Bearer-token authentication of agents, checked on the HTTP request before any upgrade.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/** SHA-256 of a secret: secrets are compared as digests, so their length does not leak. */
export const tokenDigest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Builds a check for `Authorization: Bearer <token>` against the configured tokens.
 * With no token configured every request passes (the server logs a warning at start).
 * Comparison is constant-time over SHA-256 digests, so token lengths do not leak.
 */
export function bearerAuthenticator(
  tokens: readonly string[],
): (headers: IncomingHttpHeaders) => boolean {
  if (tokens.length === 0) return () => true;
  const allowed = tokens.map(tokenDigest);
  return (headers) => {
    const header = headers.authorization;
    if (!header) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) return false;
    const presented = tokenDigest(match[1]);
    let ok = false;
    for (const token of allowed) ok = timingSafeEqual(token, presented) || ok;
    return ok;
  };
}
