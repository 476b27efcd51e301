/** Errors of the agent CA: a refused certificate signing request, or unusable CA files. */
import { CodedError } from "../errors.js";

/**
 * Why a CSR is refused. Codes: CSR_TOO_LARGE, CSR_MALFORMED, CSR_BAD_SIGNATURE,
 * CSR_WRONG_IDENTITY, CSR_NO_GROUP, CSR_RATE_LIMITED (src/service/certificate-signer.ts).
 * `data` names the limit or the offending name.
 */
export class CsrError extends CodedError {}

/** The CA certificate or key cannot be used (unreadable, mismatched, not a CA). */
export class AgentCaError extends CodedError {
  constructor(message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super("AGENT_CA_INVALID", message, data, { cause });
  }
}
