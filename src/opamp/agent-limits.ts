/**
 * Limits on what one agent may report, checked on every AgentToServer before anything is
 * merged, stored or announced. A report over a count or size limit is refused as a whole
 * (BAD_REQUEST naming the limit and its setting); agent-written error text is cut with a
 * visible marker instead, since its head is what a reader needs.
 *
 * Every check is linear in the size of the decoded message, and the message itself is
 * bounded by the message size limit, so the checks cost at most one pass over it.
 */
import { AgentLimitError } from "./errors.js";
import type {
  AgentToServer,
  AnyValue,
  ComponentDetails,
  ComponentHealth,
  ConnectionSettingsStatusMessage,
  KeyValue,
  PackageStatusesMessage,
} from "./messages.js";

export interface AgentLimits {
  /** Identifying plus non-identifying attributes of agent_description. Default 256. */
  maxAttributes: number;
  /** UTF-8 bytes of one attribute (key plus value, nested values included). Default 4096. */
  maxAttributeBytes: number;
  /** Files in effective_config. Default 64. */
  maxConfigFiles: number;
  /** Bytes of all effective_config bodies together. Default 1 MiB. */
  maxConfigBytes: number;
  /** Components in the health tree, the root included. Default 1024. */
  maxHealthComponents: number;
  /** Entries of available_components, every nesting level counted. Default 4096. */
  maxAvailableComponents: number;
  /** UTF-8 bytes kept of one error message (remote config status, health last_error). Default 4096. */
  maxErrorMessageBytes: number;
  /** Encoded bytes of all report fields stored for one agent (in memory and Redis). Default 4 MiB. */
  maxAgentBytes: number;
}

export const DEFAULT_AGENT_LIMITS: Readonly<AgentLimits> = {
  maxAttributes: 256,
  maxAttributeBytes: 4096,
  maxConfigFiles: 64,
  maxConfigBytes: 1024 * 1024,
  maxHealthComponents: 1024,
  maxAvailableComponents: 4096,
  maxErrorMessageBytes: 4096,
  maxAgentBytes: 4 * 1024 * 1024,
};

/** The serve flag of each limit, named in the error an agent sees. */
export const LIMIT_FLAGS: Record<keyof AgentLimits, string> = {
  maxAttributes: "--max-agent-attributes",
  maxAttributeBytes: "--max-attribute-bytes",
  maxConfigFiles: "--max-config-files",
  maxConfigBytes: "--max-config-bytes",
  maxHealthComponents: "--max-health-components",
  maxAvailableComponents: "--max-available-components",
  maxErrorMessageBytes: "--max-error-message-bytes",
  maxAgentBytes: "--max-agent-bytes",
};

/**
 * Bytes of an AvailableComponents hash, fixed (no setting): a hash is a digest (the Collector
 * sends SHA-256, 32 bytes), and it names the agent's component set in its Redis record, the
 * sets' keys and GET /api/v1/components, so an agent must not make it arbitrarily long. A
 * report with a longer one is refused as a whole, like one over a configurable limit.
 */
export const MAX_COMPONENTS_HASH_BYTES = 64;

/** Marker appended to cut error text; the original length follows it. */
export const TRUNCATED_MARKER = "…[truncated by opamp-gitops]";

function over(limit: keyof AgentLimits, limits: AgentLimits, what: string, actual: number): never {
  throw new AgentLimitError(limit, LIMIT_FLAGS[limit], limits[limit], what, actual);
}

/** UTF-8 size of an AnyValue, stopping early once past `cap` (nested values are walked). */
function valueBytes(value: AnyValue | null | undefined, cap: number): number {
  if (!value) return 0;
  let n = 0;
  const stack: AnyValue[] = [value];
  while (stack.length > 0 && n <= cap) {
    const v = stack.pop() as AnyValue;
    if (v.stringValue != null) n += Buffer.byteLength(v.stringValue);
    else if (v.bytesValue != null) n += v.bytesValue.length;
    else n += 8;
    for (const item of v.arrayValue?.values ?? []) stack.push(item);
    for (const kv of v.kvlistValue?.values ?? []) {
      n += Buffer.byteLength(kv.key);
      if (kv.value) stack.push(kv.value);
    }
  }
  return n;
}

function checkAttributes(list: KeyValue[], limits: AgentLimits, where: string): void {
  for (const kv of list) {
    const size = Buffer.byteLength(kv.key) + valueBytes(kv.value, limits.maxAttributeBytes);
    if (size > limits.maxAttributeBytes)
      over("maxAttributeBytes", limits, `attribute "${kv.key.slice(0, 64)}" of ${where}`, size);
  }
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes plus the marker; unchanged when it fits. */
export function truncateText(text: string, maxBytes: number): string {
  const size = Buffer.byteLength(text);
  if (size <= maxBytes) return text;
  // toString of a cut buffer may end in a replacement character; drop it.
  const head = Buffer.from(text)
    .subarray(0, maxBytes)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return `${head}${TRUNCATED_MARKER} (${size} bytes)`;
}

/**
 * Checks `message` against `limits`, cutting over-long error text in place; returns true when
 * it cut any (the message then differs from its bytes). Throws AgentLimitError (code
 * OPAMP_AGENT_LIMIT) naming the first limit exceeded.
 */
export function enforceAgentLimits(message: AgentToServer, limits: AgentLimits): boolean {
  const d = message.agentDescription;
  if (d) {
    const identifying = d.identifyingAttributes ?? [];
    const other = d.nonIdentifyingAttributes ?? [];
    const count = identifying.length + other.length;
    if (count > limits.maxAttributes)
      over("maxAttributes", limits, "agent_description attributes", count);
    checkAttributes(identifying, limits, "agent_description");
    checkAttributes(other, limits, "agent_description");
  }
  const files = message.effectiveConfig?.configMap?.configMap;
  if (files) {
    const names = Object.keys(files);
    if (names.length > limits.maxConfigFiles)
      over("maxConfigFiles", limits, "effective_config files", names.length);
    let total = 0;
    for (const name of names) total += Buffer.byteLength(name) + (files[name]?.body?.length ?? 0);
    if (total > limits.maxConfigBytes)
      over("maxConfigBytes", limits, "effective_config bytes", total);
  }
  let cut = message.health ? checkHealth(message.health, limits) : false;
  const hash = message.availableComponents?.hash;
  if (hash && hash.length > MAX_COMPONENTS_HASH_BYTES)
    throw new AgentLimitError(
      "componentsHashBytes",
      "",
      MAX_COMPONENTS_HASH_BYTES,
      "available_components hash bytes",
      hash.length,
    );
  const components = message.availableComponents?.components;
  if (components) checkComponents(components, limits);
  // The error texts an agent reports (remote config, packages, connection settings).
  const fit = (m: { errorMessage?: string | null } | null | undefined) => {
    if (!m?.errorMessage) return;
    const text = truncateText(m.errorMessage, limits.maxErrorMessageBytes);
    if (text !== m.errorMessage) cut = true;
    m.errorMessage = text;
  };
  fit(message.remoteConfigStatus);
  const packages = message.packageStatuses as PackageStatusesMessage | null | undefined;
  fit(packages);
  for (const p of Object.values(packages?.packages ?? {})) fit(p);
  fit(message.connectionSettingsStatus as ConnectionSettingsStatusMessage | null | undefined);
  return cut;
}

/**
 * Counts the health tree iteratively (an agent controls its depth) and cuts last_error and
 * status; true when it cut any.
 */
function checkHealth(root: ComponentHealth, limits: AgentLimits): boolean {
  let count = 0;
  let cut = false;
  const fit = (text: string) => {
    const out = truncateText(text, limits.maxErrorMessageBytes);
    if (out !== text) cut = true;
    return out;
  };
  const stack: ComponentHealth[] = [root];
  while (stack.length > 0) {
    const h = stack.pop() as ComponentHealth;
    if (++count > limits.maxHealthComponents)
      over("maxHealthComponents", limits, "health components", count);
    if (h.lastError) h.lastError = fit(h.lastError);
    if (h.status) h.status = fit(h.status);
    if (h.attributes) {
      if (h.attributes.length > limits.maxAttributes)
        over("maxAttributes", limits, "health component attributes", h.attributes.length);
      checkAttributes(h.attributes, limits, "a health component");
    }
    for (const child of Object.values(h.componentHealthMap ?? {})) if (child) stack.push(child);
  }
  return cut;
}

/** Counts the AvailableComponents tree iteratively (the agent controls its depth too). */
function checkComponents(root: Record<string, ComponentDetails>, limits: AgentLimits): void {
  let count = 0;
  const stack: Record<string, ComponentDetails>[] = [root];
  while (stack.length > 0) {
    const map = stack.pop() as Record<string, ComponentDetails>;
    for (const details of Object.values(map)) {
      if (++count > limits.maxAvailableComponents)
        over("maxAvailableComponents", limits, "available_components entries", count);
      if (details?.metadata) {
        if (details.metadata.length > limits.maxAttributes)
          over("maxAttributes", limits, "component metadata", details.metadata.length);
        checkAttributes(details.metadata, limits, "a component's metadata");
      }
      if (details?.subComponentMap) stack.push(details.subComponentMap);
    }
  }
}
