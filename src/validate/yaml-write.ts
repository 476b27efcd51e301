/**
 * Writing YAML the service generates (the status branch files). Only src/validate imports the
 * `yaml` package; other modules write YAML through `stringifyYaml`.
 *
 * Contract: the output is deterministic for equal input (map keys in insertion order), never
 * uses anchors or aliases, never folds long lines, and reads back (through `loadYaml`) to a
 * value deep-equal to the input for JSON-compatible input. A key "<<" (which YAML 1.1 readers
 * and our loader take as a merge) is written quoted.
 */
import { Document, isScalar, Scalar, visit } from "yaml";

const OPTIONS = {
  lineWidth: 0,
  minContentWidth: 0,
  indent: 2,
  indentSeq: true,
} as const;

/** Serializes a JSON-compatible value as one YAML document. */
export function stringifyYaml(value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === "<<") pair.key.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString(OPTIONS);
}
