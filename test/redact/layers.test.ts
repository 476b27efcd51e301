/**
 * The secret detector layer by layer (src/redact): keys, values (secretlint's rules and the
 * text rules), structure, markers and the cut of agent text.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${env:VAR}` placeholders are test data
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  findSecretSpans,
  isHeaderContainer,
  isSecretKey,
  Marker,
  Redactor,
  redactStructure,
  SECRETLINT_RULE_IDS,
} from "../../src/redact/index.js";

const R = new Redactor(new Marker(Buffer.alloc(32, 9)));
const m = (s: string) => R.marker.mark(s);
/** What the value layer hides in `text`. */
const hidden = (text: string) => findSecretSpans(text).map(([s, e]) => text.slice(s, e));

describe("layer 1: keys", () => {
  test("secret keys in any spelling, issue 13's missing ones included", () => {
    for (const k of [
      "password",
      "PASSWORD",
      "pass_word",
      "api-key",
      "api.key",
      "ApiKey",
      "X-API-Key",
      "application_key",
      "agent_key",
      "ingest_key",
      "account_key",
      "routing_key",
      "integration_key",
      "encryption_key",
      "auth_key",
      "app_key",
      "hmac_key",
      "write_key",
      "db_pw",
      "db-pwd",
      "client_secret",
      "secret_id",
      "access_key_id",
      "connection_string",
      "instrumentation_key",
      "private_token",
      "sasl.password",
      "dsn",
      "sentry_dsn",
      "datasource",
      "key_pem",
      "slack_webhook_url",
      "lightstep-access-token",
    ])
      assert.equal(isSecretKey(k), true, k);
  });

  test("locations, kinds, labels and component ids are not secret keys", () => {
    for (const k of [
      "endpoint",
      "password_file",
      "token_url",
      "token_endpoint",
      "bearer_token_file",
      "key_file",
      "ca_file",
      "secret_name",
      "username",
      "client_id",
      "key",
      "keys",
      "partition_key",
      "auth",
      "authenticator",
      "tls",
      "headers",
      "tokens",
      "bearertokenauth/x",
      "scripted_inputs/passwd",
    ])
      assert.equal(isSecretKey(k), false, k);
  });

  test("header containers of any name", () => {
    for (const k of ["headers", "http_headers", "grpc_metadata", "metadata", "required_header"])
      assert.equal(isHeaderContainer(k), true, k);
    for (const k of ["header_name", "header_key", "endpoint", "labels"])
      assert.equal(isHeaderContainer(k), false, k);
  });

  test("a value under a secret key is hidden even when no pattern matches", () => {
    const { value } = redactStructure({ app_key: "plain words", db_pw: 1234 }, m);
    assert.deepEqual(value, { app_key: m("plain words"), db_pw: m("1234") });
  });
});

describe("layer 2: values", () => {
  test("secretlint's recommended preset runs, synchronously, with its scanner rules", () => {
    assert.ok(SECRETLINT_RULE_IDS.length >= 20, SECRETLINT_RULE_IDS.join(", "));
    assert.ok(SECRETLINT_RULE_IDS.includes("@secretlint/secretlint-rule-github"));
    assert.ok(!SECRETLINT_RULE_IDS.includes("@secretlint/secretlint-rule-filter-comments"));
    const gh = "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";
    assert.deepEqual(hidden(`note ${gh} here`), [gh]);
    assert.deepEqual(hidden("id AKIAIOSFODNN7EXAMPLA."), ["AKIAIOSFODNN7EXAMPLA"]);
    const slack = "xoxb-123456789012-1234567890123-ABCDEFGHIJKLMNOPQRSTUVWX";
    assert.deepEqual(hidden(`token ${slack}`), [slack]);
  });

  test("credentials in URLs anywhere in a string: user info, query parameters, path tokens", () => {
    assert.deepEqual(hidden('Post "https://h/x?access_token=abc123&x=1": refused'), ["abc123"]);
    assert.deepEqual(hidden("u https://a.blob/c?sv=2022&sig=Zx%2B1&se=1"), ["Zx%2B1"]);
    assert.deepEqual(hidden("GET https://s3/k?X-Amz-Signature=9f86d0 403"), ["9f86d0"]);
    assert.deepEqual(hidden("dial https://admin:hunter2@db:5432 failed"), ["hunter2"]);
    assert.deepEqual(hidden("https://tok3n@github.com/o/r"), ["tok3n"]);
    assert.deepEqual(
      hidden("https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/send")
        .length,
      1,
    );
    assert.deepEqual(hidden("https://h/x?timeout=5s&region=eu"), []);
  });

  test("Authorization-style headers and auth schemes in running text", () => {
    assert.deepEqual(hidden("sent Authorization: Basic dXNlcjpwYXNz to h"), ["Basic dXNlcjpwYXNz"]);
    assert.deepEqual(hidden("with Bearer abc.DEF-123 refused"), ["abc.DEF-123"]);
    assert.deepEqual(hidden("invalid x-api-key K3yValue9 for org"), ["K3yValue9"]);
    assert.deepEqual(hidden("Api-Token dt0c01.ABC123"), ["dt0c01.ABC123"]);
    assert.deepEqual(hidden("GenieKey 1234-abcd-5678 denied"), ["1234-abcd-5678"]);
    assert.deepEqual(hidden("SSWS 00Okta1234 denied"), ["00Okta1234"]);
    // Prose stays prose.
    assert.deepEqual(hidden("token expired; password authentication failed for user"), []);
    assert.deepEqual(hidden("failed to get token: context deadline exceeded"), []);
  });

  test("pairs, connection strings, command lines, DSNs without a scheme", () => {
    assert.deepEqual(hidden("Server=db;Password=P4ss;Encrypt=true"), ["P4ss"]);
    assert.deepEqual(hidden("AccountKey=abc/def==;EndpointSuffix=x"), ["abc/def=="]);
    assert.deepEqual(hidden('{"password":"pw1","user":"u"}'), ["pw1"]);
    assert.deepEqual(hidden("run --password Xy1 --verbose"), ["Xy1"]);
    assert.deepEqual(hidden("run --api.key=Ab1 -v"), ["Ab1"]);
    const dsn = hidden("dsn otel:s3cr3t@tcp(db:3306)/app");
    assert.equal(dsn.length, 1);
    assert.match(dsn[0] as string, /s3cr3t/);
  });

  test("private keys (PEM, PGP, base64-encoded PEM) and JWTs", () => {
    const pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----";
    assert.deepEqual(hidden(`key: ${pem} end`), [pem]);
    const pgp =
      "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOY\n-----END PGP PRIVATE KEY BLOCK-----";
    assert.deepEqual(hidden(pgp), [pgp]);
    const b64 = Buffer.from("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n").toString("base64");
    assert.deepEqual(hidden(`data ${b64}`), [b64]);
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    assert.deepEqual(hidden(`got ${jwt}`), [jwt]);
  });

  test("placeholders and markers are never hidden", () => {
    assert.deepEqual(hidden("Authorization: Bearer ${env:TOKEN}"), []);
    assert.deepEqual(hidden("https://${env:U}:${env:P}@h/"), []);
    const once = R.text("password=hunter2", 100);
    assert.equal(R.text(once, 100), once, "redacting twice changes nothing");
  });
});

describe("layer 3: structure", () => {
  test("header containers of any name, in every shape", () => {
    const { value } = redactStructure(
      {
        http_headers: { "X-Key": "a1", Accept: "json" },
        grpc_metadata: { tenant: "t" },
        headers: ["Authorization: Bearer b2", "Content-Type: text/plain"],
        metadata: ["k8s.pod.name", "k8s.namespace.name"],
        extra: { headers: "x-api-key=c3,x-tenant=acme" },
        required_header: { key: "X-Secret", value: "d4" },
        list: {
          headers: [
            { name: "X-Auth", value: "e5" },
            { name: "Accept", value: "*/*" },
          ],
        },
      },
      m,
    );
    assert.deepEqual(value, {
      http_headers: { "X-Key": m("a1"), Accept: "json" },
      grpc_metadata: { tenant: "t" },
      headers: [`Authorization: ${m("Bearer b2")}`, "Content-Type: text/plain"],
      metadata: ["k8s.pod.name", "k8s.namespace.name"],
      extra: { headers: `x-api-key=${m("c3")},x-tenant=acme` },
      required_header: { key: "X-Secret", value: m("d4") },
      list: {
        headers: [
          { name: "X-Auth", value: m("e5") },
          { name: "Accept", value: "*/*" },
        ],
      },
    });
  });

  test("key/value pair lists: attributes actions, env lists, tuples, argument lists", () => {
    const { value } = redactStructure(
      {
        actions: [
          { key: "http.request.header.authorization", action: "insert", value: "Basic f6" },
          { key: "env", action: "upsert", value: "prod" },
        ],
        env: [{ name: "DB_PASSWORD", value: "g7" }],
        pairs: [["X-Auth-Token", "h8"]],
        args: ["--user", "otel", "--password", "i9"],
      },
      m,
    );
    assert.deepEqual(value, {
      actions: [
        { key: "http.request.header.authorization", action: "insert", value: m("Basic f6") },
        { key: "env", action: "upsert", value: "prod" },
      ],
      env: [{ name: "DB_PASSWORD", value: m("g7") }],
      pairs: [["X-Auth-Token", m("h8")]],
      args: ["--user", "otel", "--password", m("i9")],
    });
  });

  test("aliases: a secret anchored under a harmless key is hidden where it was anchored too", () => {
    const secret = "anch0redS3cret";
    const { value, findings } = redactStructure(
      {
        x: { comment: secret, pipeline: "otlp" },
        exporters: { e: { password: secret, id: "otlp" } },
      },
      m,
    );
    assert.deepEqual(value, {
      x: { comment: m(secret), pipeline: "otlp" },
      exporters: { e: { password: m(secret), id: "otlp" } },
    });
    assert.deepEqual(
      findings.map((f) => [f.path.join("."), f.reason]),
      [
        ["x.comment", "alias"],
        ["exporters.e.password", "key"],
      ],
    );
  });

  test("component ids are names; kinds and locations under a secret key stay", () => {
    const { value } = redactStructure(
      {
        extensions: { "bearertokenauth/x": { filename: "/var/run/token" } },
        authorization: { type: "Bearer", credentials_file: "/t", credentials: "j0" },
      },
      m,
    );
    assert.deepEqual(value, {
      extensions: { "bearertokenauth/x": { filename: "/var/run/token" } },
      authorization: { type: "Bearer", credentials_file: "/t", credentials: m("j0") },
    });
  });
});

describe("markers and the cut", () => {
  test("a marker is a keyed hash: same value, same marker; another key, another marker", () => {
    const a = new Marker(Buffer.alloc(32, 1));
    const b = new Marker(Buffer.alloc(32, 2));
    assert.match(a.mark("hunter2"), /^<redacted:[0-9a-f]{6}>$/);
    assert.equal(a.mark("hunter2"), a.mark("hunter2"));
    assert.notEqual(a.mark("hunter2"), a.mark("hunter3"));
    assert.notEqual(a.mark("hunter2"), b.mark("hunter2"));
    assert.throws(() => new Marker(Buffer.alloc(8)), /at least 16 bytes/);
  });

  test("agent text is redacted before it is cut, and never cut inside a marker", () => {
    const long = `${"x".repeat(90)} password=hunter2 ${"y".repeat(100)}`;
    const out = R.text(long, 100);
    assert.ok(out.length <= 101, String(out.length));
    assert.ok(!out.includes("hunter2"));
    assert.ok(out.endsWith("…"));
    assert.doesNotMatch(out, /<redacted(:[0-9a-f]{0,5})?…$/);
  });
});

test("spans of a string stay right while more strings than the cache holds go by", () => {
  const secret = "token: ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  const first = findSecretSpans(secret);
  assert.equal(first.length, 1);
  first[0] = [0, 1]; // callers get copies: changing them changes nothing
  for (let i = 0; i < 25_000; i++) {
    assert.deepEqual(findSecretSpans(`host-${i}`), []);
    // Asked again now and then: a string in use stays known across the turnovers.
    if (i % 4000 === 0)
      assert.deepEqual(hidden(secret), ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"]);
  }
  assert.deepEqual(hidden(secret), ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"]);
});
