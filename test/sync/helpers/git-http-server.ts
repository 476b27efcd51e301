/**
 * A real smart-HTTP Git server for tests: `git http-backend` (shipped with git) run as a CGI
 * program behind node:http, serving the bare repositories under `root`. Optional basic or
 * bearer authentication is checked here, as a reverse proxy in front of http-backend would.
 * `failWith` makes every request answer an HTTP error; `requests` records what was asked.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const CANDIDATES = ["/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend"];

export function httpBackendPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

export interface GitHttpServerOptions {
  root: string;
  /** Accept `Authorization: Bearer <token>` or basic auth with the token as password. */
  token?: string;
  basic?: { username: string; password: string };
}

export class GitHttpServer {
  /**
   * Every request; `protocol` is its Git-Protocol header ("version=2" for a ref listing),
   * `wants` the commits an upload-pack POST asks for (from the first 64 KiB of its body).
   */
  readonly requests: Array<{
    method: string;
    url: string;
    authorized: boolean;
    protocol?: string;
    wants?: string[];
  }> = [];
  failWith?: number;
  readonly #server: Server;
  readonly #options: GitHttpServerOptions;
  readonly #backend: string;

  private constructor(options: GitHttpServerOptions, backend: string) {
    this.#options = options;
    this.#backend = backend;
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  static async start(options: GitHttpServerOptions): Promise<GitHttpServer> {
    const backend = httpBackendPath();
    if (!backend) throw new Error("git-http-backend not found");
    const s = new GitHttpServer(options, backend);
    await new Promise<void>((resolve) => s.#server.listen(0, "127.0.0.1", resolve));
    return s;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /**
   * Pack transfers asked for so far: upload-pack POSTs of protocol v1 (isomorphic-git fetches
   * with v1 and lists refs with v2, so a poll that finds nothing new is not counted).
   */
  get fetches(): number {
    return this.fetchesOf().length;
  }

  /** Those pack transfers, or only those that want one of `commits`. */
  fetchesOf(commits?: readonly string[]): GitHttpServer["requests"] {
    return this.requests.filter(
      (r) =>
        r.method === "POST" &&
        r.url.endsWith("/git-upload-pack") &&
        r.protocol !== "version=2" &&
        (!commits || (r.wants ?? []).some((w) => commits.includes(w))),
    );
  }

  /** Ref listings (protocol v2 POSTs): polls, each replica's that reads the remote. */
  get listings(): number {
    return this.requests.filter((r) => r.method === "POST" && r.protocol === "version=2").length;
  }

  /** URL of a repository under the root, e.g. url("fleet.git"). */
  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #authorized(req: IncomingMessage): boolean {
    const { token, basic } = this.#options;
    if (!token && !basic) return true;
    const header = req.headers.authorization ?? "";
    if (token && header === `Bearer ${token}`) return true;
    const m = /^Basic (.+)$/.exec(header);
    if (!m?.[1]) return false;
    const [user, ...rest] = Buffer.from(m[1], "base64").toString().split(":");
    const pass = rest.join(":");
    if (token && pass === token) return true;
    return basic !== undefined && user === basic.username && pass === basic.password;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const authorized = this.#authorized(req);
    const protocol = req.headers["git-protocol"];
    const entry: (typeof this.requests)[number] = {
      method: req.method ?? "",
      url: req.url ?? "",
      authorized,
      ...(typeof protocol === "string" ? { protocol } : {}),
    };
    this.requests.push(entry);
    if (entry.method === "POST" && entry.url.endsWith("/git-upload-pack")) {
      let seen = "";
      req.on("data", (chunk: Buffer) => {
        if (seen.length > 65_536) return;
        seen += chunk.toString("latin1");
        entry.wants = [...seen.matchAll(/want ([0-9a-f]{40})/g)].map((m) => m[1] as string);
      });
    }
    if (this.failWith) {
      res.writeHead(this.failWith).end("failing on purpose");
      return;
    }
    if (!authorized) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end("unauthorized");
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: this.#options.root,
      GIT_HTTP_EXPORT_ALL: "1",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: "127.0.0.1",
      REMOTE_USER: "test",
      SERVER_PROTOCOL: "HTTP/1.1",
    };
    if (req.headers["content-length"]) env.CONTENT_LENGTH = req.headers["content-length"];
    if (req.headers["content-encoding"])
      env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
    const proto = req.headers["git-protocol"];
    if (typeof proto === "string") {
      env.HTTP_GIT_PROTOCOL = proto;
      env.GIT_PROTOCOL = proto;
    }
    const cgi = spawn(this.#backend, [], { env, stdio: ["pipe", "pipe", "ignore"] });
    req.pipe(cgi.stdin);
    cgi.stdin.on("error", () => {});
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf("\r\n\r\n");
      const lf = head.indexOf("\n\n");
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split(/\r?\n/)) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + sep));
    });
    cgi.stdout.on("end", () => {
      if (!headersDone) res.writeHead(502);
      res.end();
    });
    cgi.on("error", () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  }
}

/** A URL on which nothing listens (a port that was free a moment ago). */
export async function unreachableUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/fleet.git`;
}
