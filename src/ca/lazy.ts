/**
 * The agent CA module's light entry, for the service: names, errors and types load at once;
 * what needs @peculiar/x509 (with reflect-metadata, tsyringe and the ASN.1 schemas: ~120 ms
 * of module loading here, a tenth of serve's start) is imported on first use, so a service
 * without an agent CA never loads it. index.ts is the whole module, for tools and tests.
 */
import type { AgentCa } from "./agent-ca.js";
import type { CheckedCsr } from "./csr.js";

export type { AgentCa, IssuedCertificate, IssueRequest } from "./agent-ca.js";
export type { CheckedCsr } from "./csr.js";
export { AgentCaError, CsrError } from "./errors.js";
export { agentUri, groupUri, issuedNames } from "./names.js";

/** AgentCa.load (agent-ca.ts), its module imported on first use. */
export async function loadAgentCa(
  certPem: string | Buffer,
  keyPem: string | Buffer,
): Promise<AgentCa> {
  const { AgentCa } = await import("./agent-ca.js");
  return AgentCa.load(certPem, keyPem);
}

/** checkCsr (csr.ts), its module imported on first use; `maxBytes` defaults as there. */
export async function checkCsr(
  pem: Uint8Array | string,
  uid: string,
  maxBytes?: number,
): Promise<CheckedCsr> {
  const csr = await import("./csr.js");
  return csr.checkCsr(pem, uid, maxBytes);
}
