/**
 * Entry point of a decode worker thread (see decode-pool.ts): answers each `{ id, bytes }`
 * with a DecodeReply. Report fields travel only as their encodings, each in its own buffer,
 * transferred (not copied) back, with the received buffer that the rest of the message's
 * bytes fields are views of.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { AgentLimits } from "./agent-limits.js";
import { REPORT_FIELD_NAMES, REPORT_SOURCE, type ReportField } from "./agent-state.js";
import { warmCodec } from "./codec.js";
import type { DecodeReply } from "./decode-pool.js";
import { MalformedMessageError } from "./errors.js";
import { prepareMessage } from "./prepare.js";

const limits = (workerData as { limits: AgentLimits }).limits;

/** `bytes` itself when it owns its whole buffer, else an exactly sized copy. */
function owning(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : new Uint8Array(bytes);
}

// Agent messages are decoded here: every type's code is generated before the first one.
warmCodec();

parentPort?.on("message", ({ id, bytes }: { id: number; bytes: Uint8Array }) => {
  let reply: DecodeReply;
  const transfer: ArrayBuffer[] = [bytes.buffer as ArrayBuffer];
  try {
    // A Buffer, as on the main thread: protobufjs reads a Buffer and a Uint8Array differently
    // on some malformed input.
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const prepared = prepareMessage(buffer, limits);
    const message = { ...prepared.message } as Record<string, unknown>;
    for (const field of REPORT_FIELD_NAMES) message[REPORT_SOURCE[field]] = null;
    const encoded: typeof prepared.encoded = {};
    for (const field of Object.keys(prepared.encoded) as ReportField[]) {
      const own = owning(prepared.encoded[field] as Uint8Array);
      encoded[field] = own;
      transfer.push(own.buffer as ArrayBuffer);
    }
    reply = { id, prepared: { ...prepared, message: message as never, encoded } };
  } catch (err) {
    reply =
      err instanceof MalformedMessageError
        ? { id, malformed: err.message }
        : { id, failed: (err as Error).message };
  }
  parentPort?.postMessage(reply, transfer);
});
