/**
 * `POST /hooks/git`: a push webhook (verified by webhook.ts) asks for a Git check now. The body
 * is read straight from the socket and cut at WEBHOOK_MAX_BYTES: past it, reading stops, the
 * answer is 413 and the connection closes after it, so a client cannot make the server read
 * (or buffer) more.
 */
import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import type { AdminEnv } from "./admin-env.js";
import type { AdminBackend } from "./backend.js";
import { fail, reply } from "./reply.js";
import { verifyWebhook } from "./webhook.js";

/** Largest webhook body read, in bytes; reading stops there (413). */
export const WEBHOOK_MAX_BYTES = 1024 * 1024;

export interface WebhookOptions {
  /** Shared secret; undefined answers 404. */
  secret: string | undefined;
  /** Branch whose pushes trigger a check (others are acknowledged and ignored). */
  branch: string;
}

export function webhookHandler(backend: AdminBackend, options: WebhookOptions) {
  return async (c: Context<AdminEnv>): Promise<Response> => {
    if (!options.secret)
      return fail(
        c,
        404,
        "WEBHOOK_DISABLED",
        "no webhook secret is configured (--webhook-secret-file)",
      );
    const { incoming, outgoing } = c.env;
    const body = await readLimited(incoming, WEBHOOK_MAX_BYTES);
    if (!body) {
      outgoing.shouldKeepAlive = false; // the rest of the body is never read
      return fail(c, 413, "TOO_LARGE", "webhook body over 1 MiB");
    }
    const verdict = verifyWebhook(incoming.headers, body, options.secret);
    if (!verdict.ok) return fail(c, 401, "WEBHOOK_UNAUTHORIZED", verdict.reason);
    if (verdict.ref !== undefined && verdict.ref !== `refs/heads/${options.branch}`) {
      return reply(c, 200, {
        triggered: false,
        reason: `push to ${verdict.ref}, not refs/heads/${options.branch}`,
      });
    }
    backend.trigger();
    return reply(c, 202, { triggered: true, provider: verdict.provider });
  };
}

/**
 * The request body, or undefined as soon as it passes `limit` bytes (a Content-Length over
 * the limit is refused before reading).
 */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) {
        chunks.push(c);
        return;
      }
      req.off("data", onData);
      req.pause();
      chunks.length = 0;
      resolve(undefined);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
