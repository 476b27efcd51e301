/**
 * The HTTP client isomorphic-git uses, on Node's own `fetch`. isomorphic-git's bundled
 * `http/node` client has no timeout at all, so a remote that accepts the connection and then
 * stalls would hang the sync loop forever; this one aborts a request that receives nothing for
 * `idleTimeoutMs`. Redirects are followed; `fetch` drops the Authorization header when a
 * redirect leaves the origin.
 */
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";

export interface HttpClientOptions {
  /** Abort when no byte arrives for this long (connecting included). Default 30 000 ms. */
  idleTimeoutMs?: number;
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* once(data: Uint8Array): AsyncIterableIterator<Uint8Array> {
  if (data.byteLength > 0) yield data;
}

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const idleMs = options.idleTimeoutMs ?? 30_000;
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const method = req.method ?? "GET";
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => controller.abort(new Error(`no response data for ${idleMs} ms`)),
          idleMs,
        );
        timer.unref();
      };
      const disarm = () => clearTimeout(timer);
      const payload = req.body ? await collect(req.body) : undefined;
      arm();
      let res: Response;
      try {
        res = await fetch(req.url, {
          method,
          headers: req.headers ?? {},
          body: payload,
          signal: controller.signal,
          redirect: "follow",
        });
      } catch (err) {
        disarm();
        throw err;
      }
      const headers: Record<string, string> = {};
      res.headers.forEach((value, key) => {
        headers[key] = value;
      });
      const base = {
        url: res.url || req.url,
        method,
        statusCode: res.status,
        statusMessage: res.statusText,
        headers,
      };
      if (!res.ok || !res.body) {
        // Error bodies are small and isomorphic-git may not consume them: read them now so
        // the connection is released and no timer outlives the request.
        arm();
        const data = new Uint8Array(await res.arrayBuffer().finally(disarm));
        return { ...base, body: once(data) };
      }
      const reader = res.body.getReader();
      async function* stream(): AsyncIterableIterator<Uint8Array> {
        try {
          for (;;) {
            arm();
            const { done, value } = await reader.read();
            if (done) return;
            yield value;
          }
        } finally {
          disarm();
          reader.releaseLock();
        }
      }
      return { ...base, body: stream() };
    },
  };
}
