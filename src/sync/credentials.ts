/**
 * Credentials for a remote repository. They are never literals on a command line: each secret
 * names a file (re-read before every fetch, so a rotated token is picked up) or a variable of
 * the environment object the caller injects (this module never reads `process.env`). The
 * settings layer may also hand over a value it already resolved.
 */
import { readFile } from "node:fs/promises";
import { CredentialsError } from "./errors.js";

/** Where one secret comes from. */
export type SecretSource = { file: string } | { env: string } | { value: string };

/**
 * - `token`: sent as the password of HTTP basic authentication with `username` (default
 *   "x-access-token"; GitHub, GitLab, Gitea and Bitbucket accept a token this way), or as
 *   `Authorization: Bearer <token>` with `scheme: "bearer"`.
 * - `basic`: a user name and a password.
 */
export type GitAuth =
  | { type: "token"; token: SecretSource; scheme?: "basic" | "bearer"; username?: string }
  | { type: "basic"; username: string | SecretSource; password: SecretSource };

export type Env = Readonly<Record<string, string | undefined>>;

function describe(source: SecretSource, what: string): string {
  if ("file" in source) return `${what} file ${source.file}`;
  if ("env" in source) return `${what} variable ${source.env}`;
  return `${what} value`;
}

/** Reads one secret; trailing whitespace (a file's final newline) is dropped. */
export async function readSecret(source: SecretSource, env: Env, what: string): Promise<string> {
  const label = describe(source, what);
  let text: string | undefined;
  if ("file" in source) {
    try {
      text = await readFile(source.file, "utf8");
    } catch (err) {
      throw new CredentialsError(label, (err as NodeJS.ErrnoException).code ?? "unreadable", err);
    }
  } else if ("env" in source) {
    text = env[source.env];
    if (text === undefined) throw new CredentialsError(label, "is not set");
  } else {
    text = source.value;
  }
  const secret = text.trim();
  if (secret === "") throw new CredentialsError(label, "is empty");
  return secret;
}

/** The HTTP headers that authenticate every request to the remote (empty without auth). */
export async function authHeaders(
  auth: GitAuth | undefined,
  env: Env,
): Promise<Record<string, string>> {
  if (!auth) return {};
  if (auth.type === "token") {
    const token = await readSecret(auth.token, env, "token");
    if (auth.scheme === "bearer") return { Authorization: `Bearer ${token}` };
    return { Authorization: basic(auth.username ?? "x-access-token", token) };
  }
  const username =
    typeof auth.username === "string"
      ? auth.username
      : await readSecret(auth.username, env, "username");
  const password = await readSecret(auth.password, env, "password");
  return { Authorization: basic(username, password) };
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
