/**
 * Package files served on the agents' port (`GET|HEAD /packages/<sha256>`), for fleets that
 * have no other server: the store is content-addressed, so a name is its SHA-256 and a file
 * never changes under its name.
 *
 * - Admission: the agent's own credentials (bearer token or client certificate, as on the
 *   OpAMP endpoint), or a download grant: `?grant=<hex HMAC-SHA256(key, sha256)>`, which the
 *   server puts in the URLs it offers (an OpAMP package downloader sends only the offer's
 *   URL and headers, not the agent's credentials). A grant opens that one file only.
 * - `Content-Length` always; one `Range: bytes=a-b | a- | -n` range gives 206 with
 *   `Content-Range`, an unsatisfiable one 416; several ranges are answered with the whole file.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";

export const DOWNLOAD_PREFIX = "/packages/";
const NAME = /^[0-9a-f]{64}$/;

/** Where package files are: the path and size of a SHA-256, or undefined. */
export interface DownloadSource {
  locate(sha256: string): { path: string; size: number } | undefined;
}

/** The grant for `sha256` under `key` (hex). */
export function downloadGrant(key: Buffer, sha256: string): string {
  return createHmac("sha256", key).update(`package:${sha256}`).digest("hex");
}

/** The sha256 a request path names, or undefined when it is not a download path. */
export function downloadName(url: string | undefined): string | undefined {
  const path = (url ?? "").split("?")[0] ?? "";
  if (!path.startsWith(DOWNLOAD_PREFIX)) return undefined;
  return path.slice(DOWNLOAD_PREFIX.length);
}

/** Whether the request carries a valid grant for `sha256`. */
export function hasGrant(req: IncomingMessage, key: Buffer | undefined, sha256: string): boolean {
  if (!key) return false;
  const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
  const given = Buffer.from(query.get("grant") ?? "", "utf8");
  const want = Buffer.from(downloadGrant(key, sha256), "utf8");
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Parses one byte range against `size`: [start, end] inclusive, "unsatisfiable", or undefined (whole file). */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // several ranges or another unit: the whole file (RFC 9110 allows it)
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return undefined;
  let start: number;
  let end: number;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== "" && Number(b) < start) return undefined;
  }
  if (start >= size) return "unsatisfiable";
  return [start, end];
}

/** Answers a download request that was admitted. */
export function serveDownload(
  req: IncomingMessage,
  res: ServerResponse,
  source: DownloadSource,
): void {
  const name = downloadName(req.url) ?? "";
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain" }).end("use GET\n");
    return;
  }
  const file = NAME.test(name) ? source.locate(name) : undefined;
  if (!file) {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("no such package file\n");
    return;
  }
  const headers = {
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
    ETag: `"${name}"`,
    "Cache-Control": "public, max-age=31536000, immutable",
  };
  const range = parseRange(req.headers.range, file.size);
  if (range === "unsatisfiable") {
    res.writeHead(416, { ...headers, "Content-Range": `bytes */${file.size}` }).end();
    return;
  }
  const [start, end] = range ?? [0, file.size - 1];
  const length = file.size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, {
    ...headers,
    "Content-Length": String(length),
    ...(range ? { "Content-Range": `bytes ${start}-${end}/${file.size}` } : {}),
  });
  if (req.method === "HEAD" || length === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file.path, { start, end });
  stream.on("error", () => res.destroy());
  res.on("close", () => stream.destroy());
  stream.pipe(res);
}
