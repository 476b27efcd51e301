/**
 * Writing YAML the service generates (the status branch files). Only src/validate imports the
 * `yaml` package; other modules write YAML through `stringifyYaml`.
 *
 * Contract: the output is deterministic for equal input (map keys in insertion order), never
 * uses anchors or aliases, never folds long lines, and reads back (through `loadYaml`) to a
 * value deep-equal to the input for JSON-compatible input.
 */
import { stringify } from "yaml";

/** Serializes a JSON-compatible value as one YAML document. */
export function stringifyYaml(value: unknown): string {
  return stringify(value, {
    aliasDuplicateObjects: false,
    lineWidth: 0,
    minContentWidth: 0,
    indent: 2,
    indentSeq: true,
  });
}
