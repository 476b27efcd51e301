/**
 * WebSocket frames as a client writes them and as a server sends them (RFC 6455 §5.2), for
 * tests that speak the protocol byte by byte over raw or in-memory sockets.
 */
import { randomBytes } from "node:crypto";

export interface ClientFrameOptions {
  /** FIN bit. Default true. */
  fin?: boolean;
  /** RSV1-3 as a 3-bit number. Default 0. */
  rsv?: number;
  /** Send unmasked (a server must refuse it). Default false: masked with a random key. */
  unmasked?: boolean;
  /** A payload length to declare instead of the data's own. */
  declared?: bigint;
}

/** One client frame (masked unless `unmasked`). */
export function clientFrame(opcode: number, data: Uint8Array, o: ClientFrameOptions = {}): Buffer {
  const len = o.declared ?? BigInt(data.length);
  const head: number[] = [(o.fin === false ? 0 : 0x80) | ((o.rsv ?? 0) << 4) | opcode];
  const mask = o.unmasked ? 0 : 0x80;
  if (len < 126n) head.push(mask | Number(len));
  else if (len < 65536n) head.push(mask | 126, Number(len >> 8n), Number(len & 0xffn));
  else {
    head.push(mask | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((len >> BigInt(i * 8)) & 0xffn));
  }
  if (o.unmasked) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++)
    masked[i] = (masked[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** Server frames (unmasked) in `bytes`: opcode and payload, in order; a cut frame ends it. */
export function serverFrames(bytes: Buffer): { opcode: number; data: Buffer }[] {
  const out: { opcode: number; data: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] as number) & 0x0f;
    let len = (bytes[at + 1] as number) & 0x7f;
    let p = at + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(p));
      p += 8;
    }
    if (p + len > bytes.length) break;
    out.push({ opcode, data: bytes.subarray(p, p + len) });
    at = p + len;
  }
  return out;
}
