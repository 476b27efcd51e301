/**
 * A small client of the admin API (`/api/v1`) for the `rollout` and `agents` commands.
 * Errors: ApiRefusedError (the service answered with an error: unknown group, nothing in
 * flight, bad filter) and ApiUnreachableError (no answer, or authentication failed).
 */
import { CodedError } from "../errors.js";
import type { ClientSettings } from "../settings.js";

/** The service answered with an error status; `code` is the API's error code. */
export class ApiRefusedError extends CodedError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message, { status });
  }
}

/** No answer from the service, or it refused the credentials. */
export class ApiUnreachableError extends CodedError {
  constructor(message: string, data: Record<string, unknown>, cause?: unknown) {
    super("API_UNREACHABLE", message, data, { cause });
  }
}

export class ApiClient {
  readonly #s: ClientSettings;
  readonly #timeoutMs: number;

  constructor(settings: ClientSettings, { timeoutMs = 10_000 } = {}) {
    this.#s = settings;
    this.#timeoutMs = timeoutMs;
  }

  /** `isT` checks the answer's shape: a URL that is not our API fails clearly, not later. */
  async get<T>(path: string, isT: (body: unknown) => boolean): Promise<T> {
    return (await this.#request<T>("GET", path, isT)).body;
  }

  /**
   * Every agent matching `query` (GET /api/v1/agents), read page by page with the `after`
   * cursor (`limit` per page, at most the API's 1000), so agents that connect or go meanwhile
   * neither repeat nor push others out of the read. `isRow` checks each row's shape. The next
   * page starts at the `X-Next-After` header; without it the list is done (a page may be short
   * and still have one: the service skips agents gone meanwhile). A service that predates the
   * header: the last row, until a page shorter than `limit`.
   */
  async agents<T extends { instanceUid: string }>(
    query: URLSearchParams,
    isRow: (row: unknown) => boolean,
    { limit = 1000 } = {},
  ): Promise<T[]> {
    const rows: T[] = [];
    const q = new URLSearchParams(query);
    q.set("limit", String(limit));
    const isPage = (b: unknown) => Array.isArray(b) && b.every(isRow);
    for (let after = ""; ; ) {
      if (after) q.set("after", after);
      const { body: page, headers } = await this.#request<T[]>(
        "GET",
        `/api/v1/agents?${q}`,
        isPage,
      );
      rows.push(...page);
      const cursor = headers.get("x-next-after");
      const last = cursor ?? (page.length < limit ? undefined : page.at(-1)?.instanceUid);
      if (last === undefined) return rows;
      // A service that ignores `after` would answer the same page forever.
      if (last <= after)
        throw new ApiUnreachableError(
          `${this.#s.apiUrl} does not page GET /api/v1/agents with after=; upgrade the service`,
          { url: this.#s.apiUrl },
        );
      after = last;
    }
  }

  async post<T>(path: string, isT: (body: unknown) => boolean): Promise<T> {
    return (await this.#request<T>("POST", path, isT)).body;
  }

  async #request<T>(
    method: string,
    path: string,
    isT: (body: unknown) => boolean,
  ): Promise<{ body: T; headers: Headers }> {
    const url = `${this.#s.apiUrl}${path}`;
    const headers: Record<string, string> = { "X-Opamp-Gitops-Actor": this.#s.actor };
    if (this.#s.apiToken) headers.Authorization = `Bearer ${this.#s.apiToken}`;
    let res: Response;
    try {
      // The API refuses state-changing requests that are not JSON (CSRF protection).
      const body = method === "GET" ? undefined : "{}";
      if (body !== undefined) headers["Content-Type"] = "application/json";
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiUnreachableError(
        `cannot reach the service at ${this.#s.apiUrl} (${why}); is "opamp-gitops serve" running? (--api-url)`,
        { url },
        err,
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiUnreachableError(`${url} did not answer with JSON (HTTP ${res.status})`, {
        url,
      });
    }
    if (res.status === 401)
      throw new ApiUnreachableError(
        "the service refused the credentials; pass --api-token-file with a token from its --api-tokens-file",
        { url },
      );
    if (!res.ok) {
      const e = (body as { error?: { code?: string; message?: string } }).error;
      throw new ApiRefusedError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? text);
    }
    if (!isT(body))
      throw new ApiUnreachableError(
        `${url} answered something other than the opamp-gitops admin API; check --api-url`,
        { url },
      );
    return { body: body as T, headers: res.headers };
  }
}
