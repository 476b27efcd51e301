/**
 * Checks a PKCS#10 certificate signing request (PEM) an agent sent in
 * ConnectionSettingsRequest: bounded in size, well formed, signed by the key it carries
 * (proof of possession), with an acceptable key, and asking for no identity but its own.
 * The agent never chooses its names: the CA writes the uid and group it knows; a CSR that
 * asks for another uid, any group, host name or address is refused rather than trimmed.
 */
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { CsrError } from "./errors.js";
import { agentUri } from "./names.js";

/** A name the agent chose, as errors and logs quote it: at most 128 characters. */
const shown = (name: string) => (name.length > 128 ? `${name.slice(0, 128)}…` : name);

x509.cryptoProvider.set(webcrypto as never);

/** Largest CSR accepted, in bytes of PEM. Default of AgentCaOptions.maxCsrBytes. */
export const DEFAULT_MAX_CSR_BYTES = 8192;

export interface CheckedCsr {
  /** The requester's public key (SubjectPublicKeyInfo, DER). */
  spki: Uint8Array;
}

const CN = "2.5.4.3";

/** Accepts EC P-256/P-384 and RSA of 2048 bits or more. */
function checkKey(
  alg: webcrypto.KeyAlgorithm & { namedCurve?: string; modulusLength?: number },
): void {
  if (alg.name === "ECDSA" && (alg.namedCurve === "P-256" || alg.namedCurve === "P-384")) return;
  if (alg.name === "RSASSA-PKCS1-v1_5" && (alg.modulusLength ?? 0) >= 2048) return;
  throw new CsrError(
    "CSR_MALFORMED",
    `the CSR's key (${alg.name} ${alg.namedCurve ?? alg.modulusLength ?? ""}) is not EC P-256/P-384 or RSA ≥ 2048`,
    { algorithm: alg.name },
  );
}

/**
 * Checks `pem` for the agent `uid`. The subject may be empty or hold one CN equal to the uid;
 * a requested subjectAltName may only be the agent's own URI (names.ts). Throws CsrError.
 */
export async function checkCsr(
  pem: Uint8Array | string,
  uid: string,
  maxBytes = DEFAULT_MAX_CSR_BYTES,
): Promise<CheckedCsr> {
  const size = typeof pem === "string" ? Buffer.byteLength(pem) : pem.byteLength;
  if (size > maxBytes)
    throw new CsrError(
      "CSR_TOO_LARGE",
      `the CSR has ${size} bytes, over the limit of ${maxBytes}`,
      { size, maxBytes },
    );
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("utf8");
  if (!/^-----BEGIN (NEW )?CERTIFICATE REQUEST-----/m.test(text))
    throw new CsrError("CSR_MALFORMED", "the CSR is not a PEM CERTIFICATE REQUEST");
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(
      text
        .replace("NEW CERTIFICATE REQUEST", "CERTIFICATE REQUEST")
        .replace("END NEW CERTIFICATE", "END CERTIFICATE"),
    );
  } catch (err) {
    throw new CsrError(
      "CSR_MALFORMED",
      `the CSR does not parse: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed)
    throw new CsrError(
      "CSR_BAD_SIGNATURE",
      "the CSR's signature does not verify with the key it carries",
    );
  checkKey(csr.publicKey.algorithm as webcrypto.KeyAlgorithm);
  for (const rdn of csr.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      const ok = (type === "CN" || type === CN) && values.every((v) => v === uid);
      if (!ok)
        throw new CsrError(
          "CSR_WRONG_IDENTITY",
          `the CSR asks for subject ${shown(`${type}=${values.join(",")}`)}; only CN=${uid} (this agent's instance uid) may be asked for`,
          { name: shown(`${type}=${values.join(",")}`) },
        );
    }
  }
  for (const ext of csr.extensions) {
    if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const name of ext.names.toJSON()) {
      if (name.type === "url" && name.value === agentUri(uid)) continue;
      throw new CsrError(
        "CSR_WRONG_IDENTITY",
        `the CSR asks for the name ${shown(`${name.type}:${name.value}`)}; only ${agentUri(uid)} may be asked for`,
        { name: shown(`${name.type}:${name.value}`) },
      );
    }
  }
  return { spki: new Uint8Array(csr.publicKey.rawData) };
}
