/**
 * The names an issued agent certificate carries, as subjectAltName URIs, and how they are
 * read back from a verified peer certificate's names: `urn:opamp-gitops:agent:<uid>` binds
 * the certificate to one instance uid, `urn:opamp-gitops:group:<name>` to one group.
 */
const AGENT = "urn:opamp-gitops:agent:";
const GROUP = "urn:opamp-gitops:group:";

export const agentUri = (uid: string) => `${AGENT}${uid}`;
export const groupUri = (group: string) => `${GROUP}${group}`;

/** The uid and groups named by certificate names (as credentials.ts lists them). */
export function issuedNames(names: readonly string[]): { uid?: string; groups: string[] } {
  let uid: string | undefined;
  const groups: string[] = [];
  for (const n of names) {
    if (n.startsWith(AGENT) && uid === undefined) uid = n.slice(AGENT.length);
    else if (n.startsWith(GROUP)) groups.push(n.slice(GROUP.length));
  }
  return uid === undefined ? { groups } : { uid, groups };
}
