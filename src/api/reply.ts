/**
 * JSON answers of the admin port: two-space indented, a trailing newline, bigints as strings;
 * errors as `{error: {code, message}}`.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

const replacer = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

export function reply(c: Context, status: ContentfulStatusCode, body: unknown): Response {
  return c.body(`${JSON.stringify(body, replacer, 2)}\n`, status, {
    "Content-Type": "application/json",
  });
}

export function fail(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
): Response {
  return reply(c, status, { error: { code, message } });
}
