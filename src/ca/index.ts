/** The agent CA module: the only place that imports @peculiar/x509. */
export { AgentCa, type IssuedCertificate, type IssueRequest } from "./agent-ca.js";
export { type CheckedCsr, checkCsr, DEFAULT_MAX_CSR_BYTES } from "./csr.js";
export { AgentCaError, CsrError } from "./errors.js";
export { agentUri, groupUri, issuedNames } from "./names.js";
