/**
 * Throw-away TLS material made with the openssl command line: a CA, a server certificate
 * for 127.0.0.1/localhost and a client certificate, all signed by the CA.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  ca: Buffer;
  /** The CA's private key (PEM), for tests where the service signs with this CA. */
  caKey: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** The certificates of `extraClients`, by common name, signed by the same CA. */
  clients: Record<string, { cert: Buffer; key: Buffer }>;
}

/** `extraClients`: common names of more client certificates (beside "agent-1"). */
export function makeTestCerts(extraClients: readonly string[] = []): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "opamp-certs-"));
  const p = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=opamp-gitops test CA",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
  );
  for (const [name, cn] of [
    ["server", "localhost"],
    ["client", "agent-1"],
    ...extraClients.map((n, i) => [`client${i + 2}`, n] as const),
  ] as const) {
    ssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      p(`${name}.key`),
      "-out",
      p(`${name}.csr`),
    );
    writeFileSync(
      p(`${name}.ext`),
      name === "server"
        ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        : "extendedKeyUsage=clientAuth\n",
    );
    ssl(
      "x509",
      "-req",
      "-in",
      p(`${name}.csr`),
      "-CA",
      p("ca.crt"),
      "-CAkey",
      p("ca.key"),
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      p(`${name}.ext`),
      "-out",
      p(`${name}.crt`),
    );
  }
  const r = (f: string) => readFileSync(p(f));
  return {
    ca: r("ca.crt"),
    caKey: r("ca.key"),
    serverCert: r("server.crt"),
    serverKey: r("server.key"),
    clientCert: r("client.crt"),
    clientKey: r("client.key"),
    clients: Object.fromEntries(
      extraClients.map((n, i) => [
        n,
        { cert: r(`client${i + 2}.crt`), key: r(`client${i + 2}.key`) },
      ]),
    ),
  };
}

/**
 * A key pair and PEM CSR made with openssl: `subject` such as "/CN=x" ("/" for none) and
 * optional subjectAltName entries such as "URI:urn:x" or "DNS:host".
 */
export function makeCsr(subject: string, san: string[] = []): { csr: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "opamp-csr-"));
  const p = (f: string) => join(dir, f);
  const args = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  args.push("-nodes", "-subj", subject, "-keyout", p("k.pem"), "-out", p("c.pem"));
  if (san.length > 0) args.push("-addext", `subjectAltName=${san.join(",")}`);
  execFileSync("openssl", args, { stdio: "pipe" });
  return { csr: readFileSync(p("c.pem")), key: readFileSync(p("k.pem")) };
}
