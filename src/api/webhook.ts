/**
 * Verification of Git push webhooks (`POST /hooks/git`): GitHub's `X-Hub-Signature-256`
 * (HMAC-SHA256 of the raw body) and GitLab's `X-Gitlab-Token` (the shared secret itself).
 * Both compare in constant time over SHA-256 digests (so neither the secret's nor the
 * signature's length leaks). A push to another branch is acknowledged and ignored.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export type WebhookVerdict =
  | { ok: true; provider: "github" | "gitlab"; ref?: string }
  | { ok: false; reason: string };

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();

/** Constant-time equality of two secrets of any length: their digests are compared. */
export function secretsEqual(a: Buffer, b: Buffer): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** Checks the request's signature or token against `secret`. */
export function verifyWebhook(
  headers: IncomingHttpHeaders,
  body: Buffer,
  secret: string,
): WebhookVerdict {
  const signature = headers["x-hub-signature-256"];
  const token = headers["x-gitlab-token"];
  let provider: "github" | "gitlab";
  if (typeof signature === "string") {
    const expected = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    if (!secretsEqual(Buffer.from(signature), Buffer.from(expected))) {
      return { ok: false, reason: "X-Hub-Signature-256 does not match the body" };
    }
    provider = "github";
  } else if (typeof token === "string") {
    if (!secretsEqual(Buffer.from(token), Buffer.from(secret))) {
      return { ok: false, reason: "X-Gitlab-Token is not the configured secret" };
    }
    provider = "gitlab";
  } else {
    return { ok: false, reason: "no X-Hub-Signature-256 or X-Gitlab-Token header" };
  }
  const ref = pushedRef(body);
  return ref === undefined ? { ok: true, provider } : { ok: true, provider, ref };
}

/** The `ref` of a push event body ("refs/heads/main"), when the body says. */
function pushedRef(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { ref?: unknown };
    return typeof parsed.ref === "string" ? parsed.ref : undefined;
  } catch {
    return undefined;
  }
}
