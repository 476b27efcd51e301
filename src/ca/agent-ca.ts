/**
 * The agent CA: the CA certificate and private key the operator gives in files
 * (`--agent-ca-cert`, `--agent-ca-key`), used to sign agents' client certificates. The key
 * lives in this process' memory only (a non-extractable CryptoKey): it is never written to
 * Redis, Git or a log line.
 *
 * An issued certificate names what the CA knows, never what the agent asked for: subject
 * CN=<uid>, subjectAltName URIs of the uid and its group (names.ts), clientAuth only.
 */
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import {
  createPrivateKey,
  createPublicKey,
  randomBytes,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import * as x509 from "@peculiar/x509";
import { AgentCaError } from "./errors.js";
import { agentUri, groupUri } from "./names.js";

x509.cryptoProvider.set(webcrypto as never);

export interface IssuedCertificate {
  /** PEM of the certificate. */
  pem: string;
  /** Lowercase hex serial number. */
  serial: string;
  /** Validity, ms since the epoch. */
  notBefore: number;
  notAfter: number;
}

export interface IssueRequest {
  uid: string;
  group: string;
  /** The agent's public key (SubjectPublicKeyInfo, DER), from its checked CSR. */
  spki: Uint8Array;
  /** Lifetime of the certificate, ms. */
  validityMs: number;
  now?: number;
}

const CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384" };

export class AgentCa {
  /** The CA certificate (PEM), offered to agents as `ca_cert`. */
  readonly certPem: string;
  readonly #cert: X509Certificate;
  readonly #key: webcrypto.CryptoKey;
  readonly #algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;

  private constructor(
    certPem: string,
    cert: X509Certificate,
    key: webcrypto.CryptoKey,
    algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams,
  ) {
    this.certPem = certPem;
    this.#cert = cert;
    this.#key = key;
    this.#algorithm = algorithm;
  }

  /** Loads the CA from PEM; throws AgentCaError when the key does not match or it is no CA. */
  static async load(certPem: string | Buffer, keyPem: string | Buffer): Promise<AgentCa> {
    let cert: X509Certificate;
    let der: Buffer;
    let type: string | undefined;
    let curve: string | undefined;
    try {
      cert = new X509Certificate(certPem);
      const key = createPrivateKey(keyPem);
      type = key.asymmetricKeyType;
      curve = key.asymmetricKeyDetails?.namedCurve;
      const pub = (k: Parameters<typeof createPublicKey>[0]) =>
        createPublicKey(k).export({ type: "spki", format: "der" });
      if (!pub(key).equals(cert.publicKey.export({ type: "spki", format: "der" })))
        throw new Error("the key is not the certificate's");
      der = key.export({ type: "pkcs8", format: "der" });
    } catch (err) {
      throw new AgentCaError(`the agent CA cannot be used: ${(err as Error).message}`, {}, err);
    }
    if (!cert.ca)
      throw new AgentCaError("the agent CA certificate is not a CA (basicConstraints CA:TRUE)");
    let importAlg: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
    let algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
    if (type === "ec" && curve && CURVES[curve]) {
      importAlg = { name: "ECDSA", namedCurve: CURVES[curve] as string };
      algorithm = {
        name: "ECDSA",
        hash: curve === "secp384r1" ? "SHA-384" : "SHA-256",
      } as webcrypto.EcdsaParams;
    } else if (type === "rsa") {
      importAlg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
      algorithm = { name: "RSASSA-PKCS1-v1_5" };
    } else {
      throw new AgentCaError(
        `the agent CA key must be EC P-256/P-384 or RSA, not ${type} ${curve ?? ""}`,
      );
    }
    const key = (await webcrypto.subtle.importKey("pkcs8", der, importAlg, false, [
      "sign",
    ])) as unknown as webcrypto.CryptoKey;
    der.fill(0);
    return new AgentCa(cert.toString(), cert, key, algorithm);
  }

  /** Signs a client certificate for `uid` in `group`. */
  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    const now = req.now ?? Date.now();
    // Back-dated a minute for agents whose clocks run slightly behind.
    const notBefore = new Date(Math.floor(now / 1000) * 1000 - 60_000);
    const notAfter = new Date(Math.floor((now + req.validityMs) / 1000) * 1000);
    const serialBytes = randomBytes(16);
    // Positive, and a first byte ≥ 0x40: its hex form has no leading zero however it is printed.
    serialBytes[0] = ((serialBytes[0] as number) & 0x7f) | 0x40;
    const serial = serialBytes.toString("hex");
    const publicKey = new x509.PublicKey(req.spki);
    const issuer = new x509.X509Certificate(this.certPem);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [req.uid] }],
      // The CA's own encoding of its name: clients (Go) match a certificate to the CAs a
      // server accepts by comparing issuer bytes, so a re-encoded name would not be sent.
      issuer: issuer.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.#key,
      signingAlgorithm: this.#algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: "url", value: agentUri(req.uid) },
          { type: "url", value: groupUri(req.group) },
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return {
      pem: cert.toString("pem"),
      serial,
      notBefore: notBefore.getTime(),
      notAfter: notAfter.getTime(),
    };
  }

  /** True when `der` (a peer certificate's raw bytes) was signed by this CA. */
  signed(der: Buffer): boolean {
    try {
      const cert = new X509Certificate(der);
      return cert.checkIssued(this.#cert) && cert.verify(this.#cert.publicKey);
    } catch {
      return false;
    }
  }
}
