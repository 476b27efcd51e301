/** The console's pages under `/` (placeholder until the pages land). */
import { Hono } from "hono";
import type { AdminAccess } from "../access.js";
import type { AdminEnv } from "../admin-env.js";
import type { AdminBackend } from "../backend.js";

export function consoleRoutes(_backend: AdminBackend, _access: AdminAccess): Hono<AdminEnv> {
  return new Hono<AdminEnv>();
}
