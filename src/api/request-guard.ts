/**
 * What the admin port checks before routing, against other web sites the operator's browser
 * visits:
 *
 * - DNS rebinding: the `Host` header must name this service: an IP address (a rebinding page
 *   always uses a DNS name), `localhost`, or a name in `allowedHosts` (`--api-allowed-hosts`).
 *   A request without Host (HTTP/1.0) passes: browsers always send one.
 * - CSRF: a state-changing request (any method but GET, HEAD, OPTIONS) must say
 *   `Content-Type: application/json` (a cross-site form or a simple fetch cannot, without a
 *   CORS preflight this port never answers), and an `Origin`, when sent, must be this very
 *   origin (same scheme-less host:port as `Host`). `POST /hooks/git` is exempt from both: it
 *   is authenticated by its HMAC signature or token, and GitHub may send form bodies.
 *   The console's `POST /login` and `POST /logout` are plain HTML forms: exempt from the
 *   Content-Type rule only (their Origin is checked like any other).
 */
import { isIP } from "node:net";

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** What the guard reads of a request: method, path and a header getter (lowercase names). */
export interface GuardedRequest {
  method: string;
  path: string;
  header(name: string): string | undefined;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Console forms, posted as application/x-www-form-urlencoded by the browser. */
const FORM_PATHS = new Set(["/login", "/logout"]);

/** Lowercase host name of a `host[:port]` value, brackets and a trailing dot removed. */
function hostName(host: string): string | undefined {
  try {
    const name = new URL(`http://${host}`).hostname.toLowerCase();
    return name.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  } catch {
    return undefined;
  }
}

/**
 * Builds the check; `allowedHosts` are extra DNS names (case-insensitive) the API may be
 * reached by. Returns the refusal for a request, or undefined when it may proceed.
 */
export function requestGuard(
  allowedHosts: readonly string[] = [],
): (request: GuardedRequest) => Refusal | undefined {
  const allowed = new Set(allowedHosts.map((h) => h.toLowerCase().replace(/\.$/, "")));
  const hostAllowed = (name: string) =>
    isIP(name) !== 0 || name === "localhost" || name.endsWith(".localhost") || allowed.has(name);
  return ({ method, path, header }) => {
    const host = header("host");
    if (host !== undefined) {
      const name = hostName(host);
      if (name === undefined || !hostAllowed(name))
        return {
          status: 403,
          code: "HOST_NOT_ALLOWED",
          message: `Host "${host.slice(0, 100)}" is not a name of this service; add it with --api-allowed-hosts`,
        };
    }
    if (SAFE_METHODS.has(method) || path === "/hooks/git") return undefined;
    const origin = header("origin");
    if (origin !== undefined) {
      let same = false;
      try {
        same =
          origin !== "null" &&
          host !== undefined &&
          new URL(origin).host === new URL(`http://${host}`).host;
      } catch {
        same = false;
      }
      if (!same)
        return {
          status: 403,
          code: "FOREIGN_ORIGIN",
          message: `requests from ${origin.slice(0, 100)} are refused: the admin API does not serve other web sites`,
        };
    }
    if (FORM_PATHS.has(path)) return undefined;
    const type = (header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json")
      return {
        status: 415,
        code: "CONTENT_TYPE",
        message: `${method} needs Content-Type: application/json`,
      };
    return undefined;
  };
}
