/**
 * What the server knows of one agent, keyed by instance uid (never by connection), and the
 * per-sub-message merge of an AgentToServer into it: a present sub-message replaces the
 * stored one, an absent one keeps it.
 */
import { decodeSubMessage, encodeSubMessage } from "./codec.js";
import { EncodedFields, latin1 } from "./encoded-fields.js";
import { healthDigest, healthTop } from "./health-wire.js";
import type {
  AgentDescription,
  AgentToServer,
  AvailableComponents,
  ComponentHealth,
  CustomCapabilities,
  EffectiveConfig,
  OpaqueMessage,
  RemoteConfigStatusMessage,
} from "./messages.js";

export type Transport = "websocket" | "http";

/** The reported sub-messages, each with the protobuf type it is stored as. */
export const REPORT_FIELDS = {
  description: "AgentDescription",
  health: "ComponentHealth",
  effectiveConfig: "EffectiveConfig",
  remoteConfigStatus: "RemoteConfigStatus",
  packageStatuses: "PackageStatuses",
  customCapabilities: "CustomCapabilities",
  availableComponents: "AvailableComponents",
  connectionSettingsStatus: "ConnectionSettingsStatus",
} as const;
export type ReportField = keyof typeof REPORT_FIELDS;
/** The report fields, listed once (loops over them run per agent message). */
export const REPORT_FIELD_NAMES = Object.keys(REPORT_FIELDS) as readonly ReportField[];

/** Where each report field comes from in an AgentToServer. */
export const REPORT_SOURCE: Record<ReportField, keyof AgentToServer> = {
  description: "agentDescription",
  health: "health",
  effectiveConfig: "effectiveConfig",
  remoteConfigStatus: "remoteConfigStatus",
  packageStatuses: "packageStatuses",
  customCapabilities: "customCapabilities",
  availableComponents: "availableComponents",
  connectionSettingsStatus: "connectionSettingsStatus",
};

export interface AgentReport {
  description: AgentDescription | null;
  health: ComponentHealth | null;
  effectiveConfig: EffectiveConfig | null;
  remoteConfigStatus: RemoteConfigStatusMessage | null;
  packageStatuses: OpaqueMessage | null;
  customCapabilities: CustomCapabilities | null;
  availableComponents: AvailableComponents | null;
  connectionSettingsStatus: OpaqueMessage | null;
}

/** One agent. Times are milliseconds since the epoch; null where never happened. */
export interface AgentState extends AgentReport {
  instanceUid: string;
  sequenceNum: bigint;
  capabilities: bigint;
  transport: Transport;
  connected: boolean;
  lastConnectedAt: number | null;
  lastDisconnectedAt: number | null;
  lastSeenAt: number;
  /** Hex of the hash the agent last reported for its remote config ("" when none). */
  reportedHash: string;
  /**
   * Opaque scopes of the credentials the agent last presented (credentials.ts); [] when its
   * credentials carry none. Read by the desired-state provider, never by src/opamp.
   */
  scopes: readonly string[];
  /** Hash (hex) of the connection settings last offered, so each is offered once. */
  offeredSettingsHash: string | null;
  /**
   * Digest of the credential of the session that claimed this uid (see identity.ts; "" on an
   * open endpoint). Never the token itself.
   */
  credential: string;
  /** Encoded form of each stored report field, to detect change by byte comparison. */
  encoded: Partial<Record<ReportField, Buffer>>;
}

/** A state for an agent never seen before. */
export function emptyAgentState(
  instanceUid: string,
  transport: Transport,
  now: number,
): AgentState {
  return new StoredAgentState(instanceUid, transport, now);
}

/**
 * The one implementation of AgentState. Memory per agent is what a fleet costs, so neither
 * the decoded health — a Collector reports a tree of tens of components, each with two 64-bit
 * timestamps — nor the decoded description (~800 B of objects for a handful of attributes)
 * is kept: `health` and `description` decode their `encoded` bytes when read (on a change, a
 * claim by a new connection, the group selection after a new commit, the admin API), and a
 * value assigned to them (tests, fakes) is kept as assigned.
 */
class StoredAgentState implements AgentState {
  sequenceNum = 0n;
  capabilities = 0n;
  connected = false;
  lastConnectedAt: number | null = null;
  lastDisconnectedAt: number | null = null;
  reportedHash = "";
  offeredSettingsHash: string | null = null;
  scopes: readonly string[] = [];
  credential = "";
  /** Kept as strings (encoded-fields.ts); a field read gives a copy. */
  encoded: Partial<Record<ReportField, Buffer>> & EncodedFields = new EncodedFields();
  effectiveConfig: EffectiveConfig | null = null;
  remoteConfigStatus: RemoteConfigStatusMessage | null = null;
  packageStatuses: OpaqueMessage | null = null;
  customCapabilities: CustomCapabilities | null = null;
  availableComponents: AvailableComponents | null = null;
  connectionSettingsStatus: OpaqueMessage | null = null;
  /** An assigned health (undefined: decode `encoded.health` on read). */
  assignedHealth: ComponentHealth | null | undefined = undefined;
  /** Digest of the stored health's meaning (health-wire.ts healthDigest), once computed. */
  healthMeaningDigest: string | undefined = undefined;
  /** An assigned description (undefined: decode `encoded.description` on read). */
  assignedDescription: AgentDescription | null | undefined = undefined;

  constructor(
    readonly instanceUid: string,
    public transport: Transport,
    public lastSeenAt: number,
  ) {}

  get health(): ComponentHealth | null {
    if (this.assignedHealth !== undefined) return this.assignedHealth;
    const raw = this.encoded.raw("health");
    return raw === undefined ? null : decodedHealth(raw);
  }

  set health(value: ComponentHealth | null) {
    this.assignedHealth = value;
    this.healthMeaningDigest = undefined;
  }

  get description(): AgentDescription | null {
    if (this.assignedDescription !== undefined) return this.assignedDescription;
    const raw = this.encoded.raw("description");
    return raw === undefined ? null : decodedDescription(raw);
  }

  set description(value: AgentDescription | null) {
    this.assignedDescription = value;
  }
}

/**
 * What identifies the agent's current description without decoding it: the same value while
 * the description is unchanged, another one once it changed (its stored bytes, or the object
 * assigned). For caches of what is derived from a description (the selected group).
 */
export function descriptionIdentity(state: Readonly<AgentState>): unknown {
  if (state instanceof StoredAgentState && state.assignedDescription === undefined)
    return state.encoded.raw("description") ?? null;
  return state.description;
}

/** The description last decoded, with its bytes (a reader often looks twice in a row). */
let lastDescription: { raw: string; value: AgentDescription } | undefined;

function decodedDescription(raw: string): AgentDescription {
  if (lastDescription?.raw !== raw)
    lastDescription = {
      raw,
      value: decodeSubMessage<AgentDescription>("AgentDescription", Buffer.from(raw, "latin1")),
    };
  return lastDescription.value;
}

/** The health last decoded, with its bytes: readers often look at one agent's health twice. */
let lastHealth: { raw: string; value: ComponentHealth } | undefined;

function decodedHealth(raw: string): ComponentHealth {
  if (lastHealth?.raw !== raw)
    lastHealth = {
      raw,
      value: decodeSubMessage<ComponentHealth>("ComponentHealth", Buffer.from(raw, "latin1")),
    };
  return lastHealth.value;
}

/** The digest of an encoded health's meaning (health-wire.ts), one string per meaning. */
function meaningDigest(bytes: Uint8Array): string {
  return internReported(healthDigest(bytes));
}

/** Digests of the stored health's meaning of states not made by emptyAgentState. */
const storedHealthMeaning = new WeakMap<AgentState, string>();

function meaningOfStored(state: AgentState): string | undefined {
  // A digest is kept only beside a stored health, and dropped when it changes: once known,
  // the stored health need not be read again to compare a new report with it.
  if (state instanceof StoredAgentState) {
    if (state.healthMeaningDigest !== undefined) return state.healthMeaningDigest;
    const raw = state.assignedHealth === undefined ? state.encoded.raw("health") : undefined;
    const bytes = raw !== undefined ? Buffer.from(raw, "latin1") : encodedHealth(state);
    if (bytes) state.healthMeaningDigest = meaningDigest(bytes);
    return state.healthMeaningDigest;
  }
  let m = storedHealthMeaning.get(state);
  if (m === undefined) {
    const bytes = encodedHealth(state);
    if (!bytes) return undefined;
    m = meaningDigest(bytes);
    storedHealthMeaning.set(state, m);
  }
  return m;
}

/** The state's health encoded (an assigned one, by tests and fakes), or undefined for none. */
function encodedHealth(state: AgentState): Uint8Array | undefined {
  const health = state.health;
  return health ? encodeSubMessage("ComponentHealth", health) : undefined;
}

/**
 * The root's `healthy` and `last_error` of the agent's health, undefined when it reports
 * none: read from the stored bytes without decoding the component tree (health-wire.ts).
 */
export function healthSummary(
  state: Readonly<AgentState>,
): { healthy: boolean; lastError: string } | undefined {
  if (state instanceof StoredAgentState && state.assignedHealth === undefined) {
    const raw = state.encoded.raw("health");
    return raw === undefined ? undefined : healthTop(Buffer.from(raw, "latin1"));
  }
  const health = state.health;
  return health
    ? { healthy: health.healthy === true, lastError: health.lastError ?? "" }
    : undefined;
}

function setMeaningOfStored(state: AgentState, digest: string): void {
  if (state instanceof StoredAgentState) state.healthMeaningDigest = digest;
  else storedHealthMeaning.set(state, digest);
}

/** One message's report, prepared (prepare.ts): what mergeReport needs of it. */
export interface PreparedReport {
  /** The encoding of each report field the message carries (prepare.ts). */
  encoded: Partial<Record<ReportField, Uint8Array>>;
  /** The message's capability word. */
  capabilities: bigint;
  /** The AvailableComponents hash, when the message reports the hash without the map. */
  componentsHashOnly?: Uint8Array;
}

/**
 * Merges the report fields present in `report` into `state` (mutating it) and returns those
 * whose content changed, plus whether the capability word changed. Change is judged by
 * comparing the encodings byte for byte (no re-encoding here: prepare.ts prepared
 * them, possibly off the event loop). When the stored report fields would then exceed
 * `maxStoredBytes` (encoded bytes, all fields) nothing is merged and `onTooLarge(total)` is
 * called instead (it is expected to throw).
 *
 * Health is judged by meaning (health-wire.ts): a report that differs from the stored one
 * only in its timestamps replaces it in memory (so the state stays fresh) but is listed in
 * `refreshed`, not `changed`: it needs no write of its own and announces nothing.
 */
export function mergeReport(
  state: AgentState,
  report: PreparedReport,
  maxStoredBytes = Number.POSITIVE_INFINITY,
  onTooLarge: (total: number) => never = (total) => {
    throw new RangeError(`report fields would hold ${total} bytes`);
  },
): { changed: ReportField[]; refreshed: ReportField[]; capabilitiesChanged: boolean } {
  const updates: [ReportField, Uint8Array][] = [];
  let total = 0;
  for (const field of REPORT_FIELD_NAMES) {
    const encoded = report.encoded[field];
    if (encoded === undefined || keepsStoredComponents(state, field, report)) {
      total += storedLength(state, field);
      continue;
    }
    total += encoded.length;
    if (!storedEquals(state, field, encoded)) updates.push([field, encoded]);
  }
  if (total > maxStoredBytes && updates.length > 0) onTooLarge(total);
  const changed: ReportField[] = [];
  const refreshed: ReportField[] = [];
  for (const [field, encoded] of updates) {
    if (field === "health") {
      const stored = meaningOfStored(state);
      setReportField(state, field, encoded);
      // A first health report is a change whatever it means: its digest is taken when the
      // next report needs it (meaningOfStored), not at every connect.
      if (stored === undefined) {
        changed.push(field);
        continue;
      }
      const meaning = meaningDigest(encoded);
      setMeaningOfStored(state, meaning);
      (meaning === stored ? refreshed : changed).push(field);
      continue;
    }
    setReportField(state, field, encoded);
    changed.push(field);
  }
  // capabilities MUST always be set by the client, so the latest word always wins.
  const capabilitiesChanged = state.capabilities !== report.capabilities;
  state.capabilities = report.capabilities;
  return { changed, refreshed, capabilitiesChanged };
}

/** Bytes stored for `field` (no copy made). */
function storedLength(state: AgentState, field: ReportField): number {
  if (state instanceof StoredAgentState) return state.encoded.raw(field)?.length ?? 0;
  return state.encoded[field]?.length ?? 0;
}

/** Whether `bytes` are the ones stored for `field`. */
function storedEquals(state: AgentState, field: ReportField, bytes: Uint8Array): boolean {
  if (state instanceof StoredAgentState) {
    const raw = state.encoded.raw(field);
    return raw !== undefined && raw.length === bytes.length && raw === latin1(bytes);
  }
  return state.encoded[field]?.equals(bytes) ?? false;
}

/**
 * AvailableComponents carries its full map only when the server asked for it; afterwards the
 * agent sends the hash alone. The same hash without a map means the same set: the stored full
 * report stays (a new hash replaces it, and the server then asks for the new map).
 */
function keepsStoredComponents(
  state: AgentState,
  field: ReportField,
  report: PreparedReport,
): boolean {
  if (field !== "availableComponents" || report.componentsHashOnly === undefined) return false;
  const stored = state.availableComponents;
  if (!hasComponentMap(stored)) return false;
  return Buffer.from(report.componentsHashOnly).equals(Buffer.from(stored?.hash ?? []));
}

/** Whether an AvailableComponents report holds the component map (not just the hash). */
export function hasComponentMap(value: AvailableComponents | null | undefined): boolean {
  // Runs per message for agents that report components: stop at the first key, no key list.
  for (const _ in value?.components ?? {}) return true;
  return false;
}

/**
 * Stores a report field from its encoded bytes, copied (as a string for a StoredAgentState,
 * see encoded-fields.ts; into a buffer of their own size otherwise, unless they already own
 * theirs). A decoded value is made from an exact copy, not from the received frame, so a
 * long-lived agent state never pins a network buffer.
 */
export function setReportField(state: AgentState, field: ReportField, bytes: Uint8Array): void {
  // Bytes read from Redis are views into the reply's read buffer (up to 64 KiB, shared): a
  // StoredAgentState keeps a string copy (encoded-fields.ts), other states their own copy.
  const stored = state instanceof StoredAgentState;
  // (EncodedFields' setter takes any Uint8Array: it copies the bytes.)
  state.encoded[field] = stored ? (bytes as Buffer) : ownCopy(bytes);
  if (field === "health" && state instanceof StoredAgentState) {
    // Decoded when read (see StoredAgentState); its meaning is of the new bytes.
    state.assignedHealth = undefined;
    state.healthMeaningDigest = undefined;
    return;
  }
  if (field === "description" && state instanceof StoredAgentState) {
    state.assignedDescription = undefined; // decoded when read (see StoredAgentState)
    return;
  }
  // Decoded bytes fields are views of what they are decoded from: an exact copy, so they pin
  // neither a network buffer nor a pooled slab.
  const value = decodeSubMessage<object>(REPORT_FIELDS[field], ownCopy(bytes));
  (state as unknown as Record<ReportField, unknown>)[field] = value;
  if (field === "remoteConfigStatus") {
    const hash = (value as RemoteConfigStatusMessage).lastRemoteConfigHash;
    state.reportedHash =
      hash && hash.length > 0 ? internReported(Buffer.from(hash).toString("hex")) : "";
  }
}

/**
 * An exactly sized copy outside Node's shared 8 KB pool (a pooled slice pins the whole slab);
 * bytes that already own their whole buffer (as a decode worker sends them) are kept as they are.
 */
function ownCopy(bytes: Uint8Array): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, 0, bytes.byteLength);
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * One shared copy of a string that many agents hold. Returns the first copy seen of `text`.
 * Bounded: past `max` distinct strings the table starts over.
 */
function interner(max = 4096): (text: string) => string {
  const table = new Map<string, string>();
  return (text) => {
    const known = table.get(text);
    if (known !== undefined) return known;
    if (table.size >= max) table.clear();
    table.set(text, text);
    return text;
  };
}

/**
 * Strings the service chooses: config hashes it offers (one per group and version), group
 * names. Apart from `internReported`, so agents reporting many distinct values cannot keep
 * clearing this table.
 */
export const internHash = interner();

/**
 * Strings agents report: their config hashes, health meaning digests (agents running the
 * same pipelines report the same meaning).
 */
export const internReported = interner();

/** The agent's attributes (identifying and non-identifying) as a string map. */
export function agentAttributes(state: Pick<AgentState, "description">): Map<string, string> {
  const out = new Map<string, string>();
  const d = state.description;
  for (const kv of [...(d?.nonIdentifyingAttributes ?? []), ...(d?.identifyingAttributes ?? [])]) {
    const v = kv.value;
    if (!v) continue;
    const text =
      v.stringValue ??
      (v.boolValue !== undefined && v.boolValue !== null ? String(v.boolValue) : undefined) ??
      (v.intValue !== undefined && v.intValue !== null ? v.intValue.toString() : undefined) ??
      (v.doubleValue !== undefined && v.doubleValue !== null ? String(v.doubleValue) : undefined);
    if (text !== undefined) out.set(kv.key, text);
  }
  return out;
}
