/**
 * The searchable text of one agent (the search index's entry, agent-search.ts): its uid and
 * attribute values as the API shows them (redacted), NUL-separated, lowercased, so a search
 * cannot probe a hidden value one character at a time. Imports no OpAMP code: the index's
 * worker thread (search-text-worker.ts) computes it from plain pairs.
 */

/** An agent as the text needs it: its uid and attribute `[key, value]` pairs. */
export interface SearchSubject {
  uid: string;
  attributes: [string, string][];
}

/**
 * The text of `subject`, each attribute shown by `show` (attributeView with the fleet's
 * redactor; viewAttribute on the main thread).
 */
export function searchTextOf(
  subject: SearchSubject,
  show: (key: string, value: string) => [string, string],
): string {
  const values = subject.attributes.map(([k, v]) => show(k, v)[1]);
  return [subject.uid, ...values].join("\0").toLowerCase();
}
