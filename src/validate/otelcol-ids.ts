/**
 * Collector component and pipeline ids, as the Collector parses them: `type[/name]`, where
 * the type is a letter followed by up to 62 letters, digits or underscores, and the name is
 * any non-empty text without spaces or control characters.
 */
import { SIGNALS, type Signal } from "./otelcol-catalog.js";

const TYPE = /^[a-zA-Z][0-9a-zA-Z_]{0,62}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const NAME = /^[^\s\u0000-\u001f\u007f]{1,1024}$/u;

export interface ComponentId {
  type: string;
  name?: string;
}

/** The parts of `id`, or a reason it is not a component id. */
export function parseComponentId(id: string): ComponentId | { error: string } {
  const slash = id.indexOf("/");
  const type = slash === -1 ? id : id.slice(0, slash);
  const name = slash === -1 ? undefined : id.slice(slash + 1);
  if (!TYPE.test(type)) {
    return {
      error:
        type === ""
          ? "the type before the / is empty"
          : `the type "${type}" must start with a letter and hold only letters, digits and _ (at most 63)`,
    };
  }
  if (name !== undefined && !NAME.test(name)) {
    return {
      error:
        name === ""
          ? "the name after the / is empty"
          : `the name "${name}" must not contain spaces or control characters`,
    };
  }
  return name === undefined ? { type } : { type, name };
}

/** The signal of a pipeline id (`traces`, `metrics/2`, ...), or a reason it is not one. */
export function parsePipelineId(
  id: string,
): { signal: Signal; name?: string } | { error: string; type: string } {
  const slash = id.indexOf("/");
  const type = slash === -1 ? id : id.slice(0, slash);
  const name = slash === -1 ? undefined : id.slice(slash + 1);
  if (!(SIGNALS as readonly string[]).includes(type))
    return { type, error: `the signal "${type}" must be traces, metrics, logs or profiles` };
  if (name !== undefined && !NAME.test(name))
    return {
      type,
      error:
        name === ""
          ? "the name after the / is empty"
          : `the name "${name}" must not contain spaces or control characters`,
    };
  return name === undefined ? { signal: type as Signal } : { signal: type as Signal, name };
}

/** The type part of an id, without validation. */
export function typeOf(id: string): string {
  const slash = id.indexOf("/");
  return slash === -1 ? id : id.slice(0, slash);
}
