/**
 * Updating one ref of a remote over Git's smart HTTP protocol (`git-receive-pack`), with a
 * pack the caller builds. isomorphic-git's push finds the objects to send by walking the
 * history, reads each through its JavaScript zlib (resolving deltas) and compresses each
 * again, all on the event loop: measured at ~1.4 ms per object, 14 s of a 10,000-agent first
 * status flush. A caller that knows which objects are new and holds their bytes (the status
 * writer: status/push-pack.ts) sends them here instead.
 *
 * One push, in order:
 * 1. GET `info/refs?service=git-receive-pack`: the ref's head and the server's capabilities.
 *    When the head is not `oldOid`, the answer is "moved" and nothing is sent.
 * 2. POST `git-receive-pack`: one command (`<old> <new> <ref>`, asking `report-status`) and
 *    the pack. The server updates the ref only if it still points at `<old>` (a
 *    compare-and-swap), so a push racing another one is refused, never forced.
 * 3. The report: `ok <ref>` → "published"; `ng <ref> <reason>` → "moved" (the ref moved
 *    meanwhile, or is not a fast-forward of it), but PushFailedError when a hook declined it
 *    (a protected branch: building on a new head would not help); `unpack <error>` →
 *    PushFailedError.
 * HTTP 401/403 → AuthenticationError; another status or a server that does not speak the
 * protocol → RemoteUnreachableError; a network failure is mapped as for fetches.
 */
import type { HttpClient } from "isomorphic-git";
import { AuthenticationError, PushFailedError, RemoteUnreachableError } from "./errors.js";
import { mapRemoteError, type RemoteCall } from "./remote-fetch.js";

const ZERO_OID = "0".repeat(40);
/** A bound on what the server may answer (a ref advertisement, a report). */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface PushRequest {
  /** The full ref name, e.g. `refs/heads/opamp-status`. */
  ref: string;
  /** The commit the ref must point at now (undefined: the ref must not exist). */
  oldOid: string | undefined;
  newOid: string;
  /** Builds the pack (called only when the ref is where the push expects it). */
  pack: () => Promise<Uint8Array[]>;
}

/** One pkt-line (`0000` when `line` is null: a flush). */
export function pktLine(line: string | null): Buffer {
  if (line === null) return Buffer.from("0000");
  const body = Buffer.from(line, "utf8");
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0")), body]);
}

/** The pkt-lines of `buf` (null for a flush); throws on a malformed length. */
export function parsePktLines(buf: Buffer): Array<string | null> {
  const lines: Array<string | null> = [];
  let at = 0;
  while (at + 4 <= buf.length) {
    const hex = buf.toString("latin1", at, at + 4);
    const length = /^[0-9a-f]{4}$/.test(hex) ? Number.parseInt(hex, 16) : Number.NaN;
    if (Number.isNaN(length) || (length > 0 && length < 4) || at + length > buf.length)
      throw new Error(`malformed pkt-line at byte ${at}`);
    if (length === 0) lines.push(null);
    else lines.push(buf.toString("utf8", at + 4, at + length));
    at += length === 0 ? 4 : length;
  }
  return lines;
}

async function collect(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body ?? []) {
    total += chunk.byteLength;
    if (total > MAX_RESPONSE_BYTES) throw new Error(`response over ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function* chunks(list: readonly Uint8Array[]): AsyncIterableIterator<Uint8Array> {
  yield* list;
}

async function request(
  c: RemoteCall,
  path: string,
  expectType: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array[] } = {},
): Promise<Buffer> {
  let res: Awaited<ReturnType<HttpClient["request"]>>;
  let body: Buffer;
  try {
    res = await c.http.request({
      url: `${c.url.replace(/\/+$/, "")}/${path}`,
      method: init.method ?? "GET",
      // Some hosts answer the smart protocol only to a Git user agent.
      headers: { "user-agent": "git/opamp-gitops", ...c.headers, ...init.headers },
      ...(init.body ? { body: chunks(init.body) } : {}),
    });
    body = await collect(res.body);
  } catch (err) {
    throw mapRemoteError(c.url, err, c.withAuth);
  }
  const status = res.statusCode;
  if (status === 401 || status === 403)
    throw new AuthenticationError(c.url, status, c.withAuth, undefined);
  if (status !== 200)
    throw new RemoteUnreachableError(c.url, `HTTP ${status}`, { statusCode: status });
  const type = Object.entries(res.headers ?? {}).find(([k]) => k.toLowerCase() === "content-type");
  // A media type may carry parameters ("; charset=…").
  if (type?.[1].split(";")[0]?.trim().toLowerCase() !== expectType)
    throw new RemoteUnreachableError(
      c.url,
      `not a Git smart-HTTP server (content type ${type?.[1] ?? "none"})`,
      { reason: "content-type" },
    );
  return body;
}

/** The ref's head as advertised (undefined: absent) and the server's capabilities. */
async function advertised(c: RemoteCall, ref: string) {
  const body = await request(
    c,
    "info/refs?service=git-receive-pack",
    "application/x-git-receive-pack-advertisement",
  );
  let head: string | undefined;
  let capabilities: string[] = [];
  try {
    for (const line of parsePktLines(body)) {
      if (line === null || line.startsWith("# service=")) continue;
      const [refPart, caps] = line.replace(/\n$/, "").split("\0");
      if (caps !== undefined) capabilities = caps.split(" ");
      const [oid, name] = (refPart ?? "").split(" ");
      if (name === ref) head = oid;
    }
  } catch (err) {
    throw new RemoteUnreachableError(
      c.url,
      `unreadable ref advertisement: ${(err as Error).message}`,
      {
        reason: "protocol",
      },
    );
  }
  return { head, capabilities };
}

/** Pushes `req.newOid` to `req.ref` if the ref is at `req.oldOid` (see the file comment). */
export async function pushPack(c: RemoteCall, req: PushRequest): Promise<"published" | "moved"> {
  const { head, capabilities } = await advertised(c, req.ref);
  if (head !== req.oldOid) return "moved";
  if (!capabilities.includes("report-status"))
    throw new PushFailedError(c.url, "the server does not report push results (report-status)");
  // A client names its agent only to a server that named its own (protocol-capabilities).
  const agent = capabilities.some((c) => c.startsWith("agent=")) ? " agent=opamp-gitops" : "";
  const command = `${req.oldOid ?? ZERO_OID} ${req.newOid} ${req.ref}\0report-status${agent}\n`;
  const pack = await req.pack();
  const report = await request(c, "git-receive-pack", "application/x-git-receive-pack-result", {
    method: "POST",
    headers: {
      "content-type": "application/x-git-receive-pack-request",
      accept: "application/x-git-receive-pack-result",
    },
    body: [pktLine(command), pktLine(null), ...pack],
  });
  let lines: Array<string | null>;
  try {
    lines = parsePktLines(report);
  } catch (err) {
    throw new PushFailedError(c.url, `unreadable report: ${(err as Error).message}`);
  }
  const text = lines.filter((l): l is string => l !== null).map((l) => l.replace(/\n$/, ""));
  const unpack = text.find((l) => l.startsWith("unpack "));
  if (unpack !== "unpack ok") throw new PushFailedError(c.url, unpack ?? "no report");
  if (text.includes(`ok ${req.ref}`)) return "published";
  const ng = text.find((l) => l.startsWith(`ng ${req.ref} `));
  // A hook (a protected branch) refuses whatever the base: retrying on a new head won't help.
  if (ng && /declined/.test(ng))
    throw new PushFailedError(c.url, ng.slice(`ng ${req.ref} `.length));
  if (ng) return "moved";
  throw new PushFailedError(c.url, `no result for ${req.ref}`);
}
