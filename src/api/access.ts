/**
 * Who may use the admin API and the console: a bearer token (`Authorization: Bearer …`, the
 * CLI and scripts) or the same token kept by the browser in the session cookie the console's
 * login form sets (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS, no expiry: it ends with
 * the browser session). Tokens are replaceable while serving; with none configured, access is
 * open and no login is asked.
 */
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { bearerAuthenticator } from "../opamp/index.js";

export const SESSION_COOKIE = "opamp_gitops_session";

export class AdminAccess {
  #check: ReturnType<typeof bearerAuthenticator>;
  #open: boolean;

  constructor(tokens: readonly string[]) {
    this.#check = bearerAuthenticator(tokens);
    this.#open = tokens.length === 0;
  }

  /** True when no token is configured (no login needed). */
  get open(): boolean {
    return this.#open;
  }

  /** Replaces the accepted tokens; returns whether access was closed and is now open. */
  setTokens(tokens: readonly string[]): boolean {
    const opened = tokens.length === 0 && !this.#open;
    this.#check = bearerAuthenticator(tokens);
    this.#open = tokens.length === 0;
    return opened;
  }

  /** Whether `token` is accepted (compared in constant time over digests). */
  accepts(token: string): boolean {
    return this.#check({ authorization: `Bearer ${token}` });
  }

  /** Whether the request carries an accepted bearer header or session cookie. */
  allowed(c: Context): boolean {
    if (this.#open) return true;
    const header = c.req.header("authorization");
    if (header !== undefined) return this.#check({ authorization: header });
    const cookie = getCookie(c, SESSION_COOKIE);
    return cookie !== undefined && cookie !== "" && this.accepts(cookie);
  }
}
