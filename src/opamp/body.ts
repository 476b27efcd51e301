/**
 * Reads an HTTP request body with the size limit applied twice: to the bytes on the wire and,
 * for `Content-Encoding: gzip`, to the inflated bytes, so a gzip bomb never inflates past it.
 */
import type { IncomingMessage } from "node:http";
import { gunzip } from "node:zlib";
import { MalformedMessageError, MessageTooLargeError } from "./errors.js";

/** Reads the raw body, failing as soon as more than `limitBytes` arrived. */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limitBytes) {
      reject(new MessageTooLargeError(limitBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        req.off("data", onData);
        req.resume(); // drain so the 413 can still be written on this socket
        reject(new MessageTooLargeError(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

/** Inflates a gzip body, never producing more than `limitBytes`. */
export function inflateBody(body: Buffer, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: limitBytes }, (err, out) => {
      if (!err) return resolve(out);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ERR_BUFFER_TOO_LARGE") return reject(new MessageTooLargeError(limitBytes));
      reject(new MalformedMessageError(`gzip body cannot be inflated: ${err.message}`, {}, err));
    });
  });
}

/** Reads the body and undoes its Content-Encoding (identity or gzip). */
export async function readMessageBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const raw = await readBody(req, limitBytes);
  const encoding = (req.headers["content-encoding"] ?? "identity").toLowerCase();
  if (encoding === "gzip") return inflateBody(raw, limitBytes);
  if (encoding === "identity") return raw;
  throw new MalformedMessageError(`unsupported Content-Encoding "${encoding}"`, { encoding });
}
