/**
 * Layer 1 of the secret detector: key names. A value under a key that names a credential is
 * a secret whatever it looks like ("when unsure, hide").
 *
 * Keys are normalised before comparing: lower case, and every character that is not a letter
 * or digit dropped, so `API_KEY`, `api-key`, `api.key` and `ApiKey` are one name.
 *
 * A key is secret when its normalised form
 * - contains a credential word (password, secret, token, apikey, ... see SECRET_WORDS), or
 * - ends with "key" (routing_key, ingest_key, hmac_key, write_key, app_key, ...) or with
 *   "pw"/"pwd"/"pass" (db_pw), or
 * - is one of the fields the Collector's components declare opaque or that carry credentials
 *   by design (datasource, dsn, htpasswd inline lists, ... see COMPONENT_FIELDS),
 * and it does not name where a secret lives rather than the secret (…_file, …_path, …_url,
 * …_endpoint, …_env, …_name, …_type, ... see LOCATION_SUFFIX) or a plainly harmless key.
 */

/** Lower case, letters and digits only. */
export function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** Substrings of a normalised key that make it secret. */
const SECRET_WORDS = [
  "password",
  "passwd",
  "passphrase",
  "passcode",
  "secret",
  "token",
  "apikey",
  "accesskey",
  "privatekey",
  "authorization",
  "authheader",
  "bearer",
  "credential",
  "signature",
  "connectionstring",
  "connstr",
  "cookie",
  "sessionid",
  "htpasswd",
  "sasl",
  "saskey",
  "sastoken",
  "licensekey",
  "accountkey",
  "webhookurl",
  "dsn",
];
const SECRET_WORD = new RegExp(`(${SECRET_WORDS.join("|")})`);
/** Endings that make a key secret: …key, …pw, …pwd, …pass (not …keys, …bypass). */
const SECRET_ENDING = /(key|pw|pwd|pass)$/;

/**
 * Fields of Collector components that carry credentials under a name no rule above catches
 * (from the components' configopaque fields and documented settings).
 */
export const COMPONENT_FIELDS = new Set([
  "datasource", // sqlquery receiver, sql-style exporters: a DSN with its password
  "inline", // basicauth extension: htpasswd.inline, "user:password" lines
  "sig",
  "sas",
  "userinfo",
  "keypem", // TLS key_pem: a private key given inline
  "jwt",
  "otp",
  "pin",
  "mfa",
]);

/**
 * Normalised keys that end like a secret but name something else. Values under them are still
 * checked by the value layer.
 */
const HARMLESS = new Set([
  "key", // a bare `key` is a label (attributes actions, header lists); see isSecretKeyIn
  "primarykey",
  "partitionkey",
  "sortkey",
  "cachekey",
  "metadatakey",
  "fromattributekey",
  "sourcekey",
  "targetkey",
  "labelkey",
  "attributekey",
  "tagkey",
  "resourcekey",
  "contextkey",
  "groupbykey",
  "dedupkey",
  "bypass",
  "compass",
  "tokenizer",
  "tokens", // a count of tokens (LLM metrics), never a credential list in the Collector
  "maxtokens",
  "credentialsprovider",
  "authenticator",
  "secretname",
  "secretkeyref",
  "secretref",
  "passwordpolicy",
  "tokentype",
  "passthrough",
]);

/** Where a secret is, not the secret: keys ending so are kept (their values are still scanned). */
const LOCATION_SUFFIX =
  /(file|files|filepath|path|dir|directory|url|uri|endpoint|env|envvar|name|names|type|kind|ttl|timeout|interval|expiry|expiration|enabled|enable|header|headername|source|format|length|size|count|version|scheme|mode)$/;

/**
 * True when a key under a secret one still names a location or a kind, not the secret
 * (`authorization: {type: Bearer, credentials_file: …}`): its value is walked, not hidden.
 */
export function isLocationKey(key: string): boolean {
  const k = normalizeKey(key);
  return LOCATION_SUFFIX.test(k) && !/(webhookurl|dsn)$/.test(k);
}

/** Sections whose keys are component ids (`bearertokenauth/x`), never setting names. */
const ID_SECTIONS = new Set(["receivers", "exporters", "processors", "extensions", "connectors"]);

/** True when the keys of a map under `parent` are component ids. */
export function holdsComponentIds(parent: string): boolean {
  return ID_SECTIONS.has(normalizeKey(parent));
}

/** True when a map key names a secret value (see the file comment). */
export function isSecretKey(key: string): boolean {
  // `basicauth/passwd`: a component id names a component, its settings are walked.
  if (key.includes("/")) return false;
  const k = normalizeKey(key);
  if (k === "" || HARMLESS.has(k)) return false;
  if (COMPONENT_FIELDS.has(k)) return true;
  if (k === "pass" || k === "pw" || k === "pwd") return true;
  // "accesskeyid": an AWS key id is an identifier, but it pairs with the secret: hidden too.
  if (k.endsWith("keyid")) return true;
  const named = SECRET_WORD.test(k) || SECRET_ENDING.test(k);
  if (!named) return false;
  // `password_file`, `token_url`: locations. `webhook_url` and `*_dsn` are credentials themselves.
  if (LOCATION_SUFFIX.test(k) && !/(webhookurl|dsn)$/.test(k)) return false;
  return true;
}

/**
 * Keys whose map or list holds header-like name → value pairs, whatever the exact name:
 * `headers`, `http_headers`, `grpc_metadata`, `metadata`, `required_header`, `extra_headers`,
 * `default_headers`, `static_headers`, ...
 */
export function isHeaderContainer(key: string): boolean {
  const k = normalizeKey(key);
  return (
    /(headers?|metadata|requiredheader|cookies)$/.test(k) && !/(headername|headerkey)$/.test(k)
  );
}

/** Header names whose values are not secrets; every other header value is hidden. */
const PLAIN_HEADERS = new Set([
  "accept",
  "acceptencoding",
  "acceptlanguage",
  "contentencoding",
  "contenttype",
  "useragent",
  "xscopeorgid",
  "xtenant",
  "xtenantid",
  "xorgid",
  "tenant",
  "tenantid",
  "host",
  "connection",
  "cachecontrol",
]);

/** True when a header of this name carries nothing secret (Content-Type, X-Scope-OrgID, ...). */
export function isPlainHeader(name: string): boolean {
  return PLAIN_HEADERS.has(normalizeKey(name));
}

/** Parents under which a bare `key` (or `value`) is the credential: `api: {key: …}`. */
const KEY_PARENTS = new Set(["api", "auth", "license", "ingest", "access", "apikey", "account"]);

/** True when `key` under `parent` (both raw) names a secret, bare `key` included. */
export function isSecretKeyIn(key: string, parent: string): boolean {
  if (isSecretKey(key)) return true;
  return normalizeKey(key) === "key" && KEY_PARENTS.has(normalizeKey(parent));
}
