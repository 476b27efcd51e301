/**
 * The error of a secret reference (`${env:NAME}`, `${file:/path}`) that cannot be resolved on
 * the service (SECRET_REF_UNRESOLVED: missing, unreadable) or that the policy refuses
 * (SECRET_REF_REFUSED). Its message reaches the repository writer (PR gate, status branch).
 */
import { CodedError } from "../errors.js";

/** SECRET_REF_UNRESOLVED (missing, unreadable) or SECRET_REF_REFUSED (against the policy). */
export class SecretRefError extends CodedError {
  constructor(ref: string, why: string, code = "SECRET_REF_UNRESOLVED") {
    super(
      code,
      code === "SECRET_REF_REFUSED" ? why : `${ref} cannot be resolved on the service: ${why}`,
      { ref },
    );
  }
}
