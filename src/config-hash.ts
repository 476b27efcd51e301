/**
 * The config hash of DESIGN §1: SHA-256 over the sorted (name, content_type, body) entries.
 * Deterministic and independent of the commit that carried the files.
 */
import { createHash } from "node:crypto";

export interface ConfigFile {
  /** File name, the key of the AgentConfigMap entry. */
  name: string;
  /** "text/yaml" or "application/json". */
  contentType: string;
  body: Uint8Array;
}

/** Lowercase hex SHA-256 of the files, independent of their order. */
export function configHash(files: readonly ConfigFile[]): string {
  const hash = createHash("sha256");
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const file of sorted) {
    // Length-prefix each part so that no two different entry lists hash alike.
    for (const part of [Buffer.from(file.name), Buffer.from(file.contentType), file.body]) {
      const len = Buffer.alloc(8);
      len.writeBigUInt64BE(BigInt(part.length));
      hash.update(len).update(part);
    }
  }
  return hash.digest("hex");
}
