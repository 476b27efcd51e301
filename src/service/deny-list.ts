/**
 * The deny list of agent credentials, in memory: uids revoked through the admin API (loaded
 * from Redis by AgentCredentialAuthority, permanent), uids in the current Git commit's
 * fleet.yaml `revoked:` list (replaced with each commit), and the serials of certificates
 * issued to API-revoked agents. Synchronous: the TLS and request checks read it.
 */
import type { PeerCertificate } from "node:tls";
import { issuedNames } from "../ca/lazy.js";

/** Who revoked an agent's credentials, and when (ISO time; `api:<actor>` or `git:<commit>`). */
export interface Revocation {
  at: string;
  by: string;
}

/** A serial as a set key: lowercase hex without leading zeros (printers differ on both). */
const serialKey = (serial: string) => serial.toLowerCase().replace(/^0+/, "");

export class DenyList {
  #api = new Map<string, Revocation>();
  #git = new Map<string, Revocation>();
  #serials = new Set<string>();

  /** The revocation of `uid` (the API's first), or undefined. */
  get(uid: string): Revocation | undefined {
    return this.#api.get(uid) ?? this.#git.get(uid);
  }

  /** Every revoked uid with its record. */
  all(): Map<string, Revocation> {
    return new Map([...this.#git, ...this.#api]);
  }

  /** The API revocation of `uid` only. */
  fromApi(uid: string): Revocation | undefined {
    return this.#api.get(uid);
  }

  /**
   * Replaces the API part with what Redis holds (uid → JSON record, lowercase hex serials);
   * returns the uids that were not revoked before.
   */
  loadApi(records: Record<string, string>, serials: readonly string[]): string[] {
    const before = new Set(this.#api.keys());
    this.#api = new Map(Object.entries(records).map(([u, v]) => [u, JSON.parse(v) as Revocation]));
    this.#serials = new Set(serials.map(serialKey));
    return [...this.#api.keys()].filter((u) => !before.has(u));
  }

  /** Adds an API revocation (and its certificate's serial) made by this process. */
  addApi(uid: string, record: Revocation, serial?: string): void {
    this.#api.set(uid, record);
    if (serial) this.#serials.add(serialKey(serial));
  }

  /**
   * Replaces Git's list; a uid already listed keeps its record (the first commit that listed
   * it). Returns the uids newly listed.
   */
  setGit(uids: readonly string[], commit: string, at: string): string[] {
    const next = new Map<string, Revocation>();
    const added: string[] = [];
    for (const uid of uids) {
      const kept = this.#git.get(uid);
      next.set(uid, kept ?? { at, by: `git:${commit}` });
      if (!kept) added.push(uid);
    }
    this.#git = next;
    return added;
  }

  /** True for a certificate whose serial is denied or whose agent URI names a revoked uid. */
  refuses(cert: PeerCertificate): boolean {
    if (this.#serials.has(serialKey(cert.serialNumber))) return true;
    const names = (cert.subjectaltname ?? "").split(/,\s*/).map((n) => n.replace(/^URI:/, ""));
    const { uid } = issuedNames(names);
    return uid !== undefined && this.get(uid) !== undefined;
  }
}
