/**
 * The identity a connection presents, used to decide who owns an instance uid: a digest of
 * its credential (the bearer token, or with mutual TLS the client certificate), never the
 * credential itself. It is stored with the agent state so that any replica can compare it.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { encodeSubMessage } from "./codec.js";
import type { AgentDescription } from "./messages.js";

/**
 * "sha256:<hex>" of the bearer token plus, with mTLS, "cert:<sha256 fingerprint>" of the
 * client certificate; "" when the request presents neither (an open endpoint).
 */
export function credentialDigest(req: IncomingMessage): string {
  const parts: string[] = [];
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  if (match?.[1]) parts.push(`sha256:${createHash("sha256").update(match[1]).digest("hex")}`);
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate === "function") {
    const cert = socket.getPeerCertificate();
    if (cert?.fingerprint256)
      parts.push(`cert:${cert.fingerprint256.replace(/:/g, "").toLowerCase()}`);
  }
  return parts.join(" ");
}

/** Encoded identifying attributes (order as sent), to compare two descriptions' identities. */
export function identifyingKey(description: AgentDescription | null | undefined): Buffer {
  return Buffer.from(
    encodeSubMessage("AgentDescription", {
      identifyingAttributes: description?.identifyingAttributes ?? [],
    }),
  );
}
