/**
 * Protobuf codec for opamp.proto.v1, loaded once from the .proto files next to this module.
 * uint64 words cross this boundary as bigint, never as a JS number, so no bit is lost.
 */
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";
import Long from "long";
import protobuf from "protobufjs";
import { packageFile } from "../package-files.js";
import { SERVER_CAPABILITIES } from "./capabilities.js";
import { MalformedMessageError } from "./errors.js";
import type { AgentToServer, Int64, ServerToAgent } from "./messages.js";

// protobufjs decodes 64-bit fields as Long only when it has a Long implementation.
protobuf.util.Long = Long;
protobuf.configure();

const root = protobuf.loadSync(fileURLToPath(packageFile("opamp/proto/opamp.proto")));
root.resolveAll();

/**
 * protobufjs generates each type's encoder and decoder on first use, which costs tens of
 * milliseconds of event loop for the larger types: done for every type, once, when the main
 * thread loads this module, rather than in the middle of the first agent's message. A worker
 * thread that decodes agent messages asks for it at its start (`warmCodec`); the others (the
 * status render workers, stopped when idle and started again at the next flush) generate
 * only the few types they use, ~60-80 ms less per start (docs/performance.md, "Start-up").
 */
function warm(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) {
      nested.decode(nested.encode(nested.create()).finish());
    }
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) warm(nested);
  }
}
if (isMainThread) warm(root);

/** Generates every message type's code now (see `warm`); for worker threads that decode. */
export function warmCodec(): void {
  warm(root);
}

/** Types resolved so far, by short name: a namespace lookup per message costs measurable CPU. */
const types = new Map<string, protobuf.Type>();

/** Looks up a message type of package opamp.proto.v1 by its short name; resolved once. */
export function messageType(name: string): protobuf.Type {
  let type = types.get(name);
  if (type === undefined) {
    type = root.lookupType(`opamp.proto.v1.${name}`);
    types.set(name, type);
  }
  return type;
}

const agentToServerType = messageType("AgentToServer");
const serverToAgentType = messageType("ServerToAgent");

/**
 * AgentToServer with `health` read as bytes: the same wire encoding (a delimited
 * ComponentHealth), left undecoded for the server, which reads health on the wire
 * (health-wire.ts) instead of building an object per component.
 */
const agentToServerHealthBytesType = (() => {
  const json = agentToServerType.toJSON() as protobuf.IType;
  const health = json.fields.health as protobuf.IField;
  const type = protobuf.Type.fromJSON("AgentToServerHealthAsBytes", {
    ...json,
    fields: { ...json.fields, health: { ...health, type: "bytes" } },
  });
  (agentToServerType.parent as protobuf.Namespace).add(type);
  type.resolveAll();
  type.decode(type.encode(type.create()).finish());
  return type;
})();

/** Converts a decoded 64-bit value to bigint, exactly (from its two 32-bit halves: no text). */
export function toBigInt(value: Int64 | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "number") return BigInt(value);
  const n = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return value.unsigned ? n : BigInt.asIntN(64, n);
}

/** A uint64 word as protobufjs encodes it; undefined stays absent. */
function toLong(value: bigint | undefined): Long | undefined {
  if (value === undefined) return undefined;
  const word = BigInt.asUintN(64, value);
  return Long.fromBits(Number(word & 0xffffffffn), Number(word >> 32n), true);
}

type Decoded = Record<string, unknown>;

/**
 * protobufjs decodes a map entry that has a key but no value as `null`, which its encoder
 * then cannot encode (a stored sub-message is re-encoded): such values become the empty
 * message, as the protobuf specification defines an absent value. Walks only message fields.
 */
function fillMapValues(type: protobuf.Type, message: Decoded): void {
  for (const field of mapPaths.get(type) ?? NO_FIELDS) {
    const nested = field.resolvedType as protobuf.Type;
    const value = message[field.name];
    if (value === null || value === undefined) continue;
    if (field.map) {
      const map = value as Record<string, Decoded | null>;
      for (const key of Object.keys(map)) {
        const entry = map[key];
        if (entry === null || entry === undefined) map[key] = nested.create() as unknown as Decoded;
        else fillMapValues(nested, entry);
      }
    } else if (field.repeated) {
      for (const item of value as Decoded[]) if (item) fillMapValues(nested, item);
    } else {
      fillMapValues(nested, value as Decoded);
    }
  }
}

const NO_FIELDS: protobuf.Field[] = [];

/**
 * Per message type, the fields fillMapValues walks: maps of messages, and message fields
 * whose type can hold one at any depth. The rest (scalars, and trees such as AnyValue or
 * KeyValue that hold no such map) is not walked. Found once, at load, by iterating to a fixed
 * point (types refer to themselves: ComponentHealth holds a map of ComponentHealth).
 */
const mapPaths = new Map<protobuf.Type, protobuf.Field[]>();
{
  const all: protobuf.Type[] = [];
  const collect = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) all.push(nested);
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) collect(nested);
    }
  };
  collect(root);
  const holds = new Set<protobuf.Type>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const type of all) {
      if (holds.has(type)) continue;
      const any = type.fieldsArray.some((f) => {
        const nested = f.resolvedType;
        return nested instanceof protobuf.Type && (f.map || holds.has(nested));
      });
      if (any) {
        holds.add(type);
        grew = true;
      }
    }
  }
  for (const type of holds)
    mapPaths.set(
      type,
      type.fieldsArray.filter((f) => {
        const nested = f.resolvedType;
        return nested instanceof protobuf.Type && (f.map || holds.has(nested));
      }),
    );
}

function sub<T>(message: Decoded, field: string): T | null {
  return (message[field] ?? null) as T | null;
}

/**
 * Decodes an AgentToServer. Throws MalformedMessageError when the bytes are not protobuf.
 * Checks no semantic rule (instance_uid length and the like are the session's job).
 */
export function decodeAgentToServer(bytes: Uint8Array): AgentToServer {
  return fromDecoded(decodeWith(agentToServerType, bytes));
}

/**
 * Decodes an AgentToServer but its health, which is returned as its encoding (a view into
 * `bytes`), unchecked: `message.health` is null. Throws MalformedMessageError as
 * decodeAgentToServer does for the rest.
 */
export function decodeAgentToServerHealthAsBytes(bytes: Uint8Array): {
  message: AgentToServer;
  health?: Uint8Array;
} {
  const m = decodeWith(agentToServerHealthBytesType, bytes);
  // Absent bytes read as the prototype's default: only an own property was sent.
  const health = Object.hasOwn(m, "health") ? (m.health as Uint8Array) : undefined;
  m.health = null;
  const message = fromDecoded(m);
  return health ? { message, health } : { message };
}

function decodeWith(type: protobuf.Type, bytes: Uint8Array): Decoded {
  try {
    const m = type.decode(bytes) as unknown as Decoded;
    fillMapValues(type, m);
    return m;
  } catch (err) {
    throw new MalformedMessageError(
      `AgentToServer is not valid protobuf: ${(err as Error).message}`,
      {},
      err,
    );
  }
}

function fromDecoded(m: Decoded): AgentToServer {
  return {
    instanceUid: (m.instanceUid as Uint8Array | undefined) ?? new Uint8Array(0),
    sequenceNum: toBigInt(m.sequenceNum as Int64),
    agentDescription: sub(m, "agentDescription"),
    capabilities: toBigInt(m.capabilities as Int64),
    health: sub(m, "health"),
    effectiveConfig: sub(m, "effectiveConfig"),
    remoteConfigStatus: sub(m, "remoteConfigStatus"),
    packageStatuses: sub(m, "packageStatuses"),
    agentDisconnect: sub(m, "agentDisconnect"),
    flags: toBigInt(m.flags as Int64),
    connectionSettingsRequest: sub(m, "connectionSettingsRequest"),
    customCapabilities: sub(m, "customCapabilities"),
    customMessage: sub(m, "customMessage"),
    availableComponents: sub(m, "availableComponents"),
    connectionSettingsStatus: sub(m, "connectionSettingsStatus"),
  };
}

/** The capability word most replies carry, converted once. */
const SERVER_CAPABILITIES_LONG = toLong(SERVER_CAPABILITIES);

/**
 * Encodes a ServerToAgent; `capabilities` defaults to what this server implements. A plain
 * reply (instance uid, flags, capabilities: a heartbeat's ack) is copied from an encoding
 * cached per flags and capabilities with the uid written in, as it makes most of the traffic.
 */
export function encodeServerToAgent(message: ServerToAgent): Uint8Array {
  if (isPlainReply(message)) return encodePlainReply(message);
  const { errorResponse, connectionSettings } = message;
  const wire: Decoded = {
    ...message,
    flags: toLong(message.flags),
    capabilities:
      message.capabilities === undefined ? SERVER_CAPABILITIES_LONG : toLong(message.capabilities),
  };
  if (errorResponse?.retryInfo)
    wire.errorResponse = {
      ...errorResponse,
      retryInfo: {
        retryAfterNanoseconds: toLong(errorResponse.retryInfo.retryAfterNanoseconds),
      },
    };
  if (connectionSettings?.opamp)
    wire.connectionSettings = {
      ...connectionSettings,
      opamp: {
        ...connectionSettings.opamp,
        heartbeatIntervalSeconds: toLong(connectionSettings.opamp.heartbeatIntervalSeconds),
      },
    };
  return serverToAgentType.encode(wire).finish();
}

const PLAIN_FIELDS = new Set(["instanceUid", "flags", "capabilities"]);

/** Whether `message` carries a 16-byte instance uid, flags and capabilities and nothing else. */
function isPlainReply(message: ServerToAgent): boolean {
  if (message.instanceUid.length !== 16) return false;
  const fields = message as unknown as Record<string, unknown>;
  for (const key in fields) if (fields[key] !== undefined && !PLAIN_FIELDS.has(key)) return false;
  return true;
}

/** Encoded plain replies with a zero uid, by `${flags}/${capabilities}` (a handful of keys). */
const plainReplies = new Map<string, Buffer>();

/** Where the 16 uid bytes sit in an encoding: field 1 comes first (tag 0x0a, length 16). */
const UID_OFFSET = 2;

function encodePlainReply(message: ServerToAgent): Uint8Array {
  const { flags, capabilities } = message;
  // The heartbeat's ack (no flags, our capabilities) skips the key: bigint to text costs.
  if (flags === undefined && capabilities === undefined)
    return fromTemplate(ACK_TEMPLATE, message.instanceUid);
  const key = `${flags ?? ""}/${capabilities ?? SERVER_CAPABILITIES}`;
  let template = plainReplies.get(key);
  if (template === undefined) {
    template = plainTemplate(flags, capabilities ?? SERVER_CAPABILITIES);
    if (plainReplies.size < 64) plainReplies.set(key, template);
  }
  return fromTemplate(template, message.instanceUid);
}

/** The encoding of a plain reply with a zero uid. */
function plainTemplate(flags: bigint | undefined, capabilities: bigint): Buffer {
  const bytes = serverToAgentType
    .encode({
      instanceUid: new Uint8Array(16),
      flags: toLong(flags),
      capabilities: toLong(capabilities),
    })
    .finish();
  if (bytes[0] !== 0x0a || bytes[1] !== 16) throw new Error("unexpected ServerToAgent layout");
  return Buffer.from(bytes);
}

function fromTemplate(template: Buffer, instanceUid: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(template.length);
  template.copy(out);
  out.set(instanceUid, UID_OFFSET);
  return out;
}

/** The reply to a heartbeat: instance uid and this server's capabilities, nothing else. */
const ACK_TEMPLATE = plainTemplate(undefined, SERVER_CAPABILITIES);

/**
 * Encodes the reply to a heartbeat that asks for nothing (ServerToAgent with the 16-byte
 * instance uid found in `bytes` at `uidOffset`, and SERVER_CAPABILITIES): the same bytes as
 * encodeServerToAgent gives it.
 */
export function encodeHeartbeatAck(bytes: Uint8Array, uidOffset = 0): Buffer {
  const out = Buffer.allocUnsafe(ACK_TEMPLATE.length);
  ACK_TEMPLATE.copy(out);
  // 16 bytes copied by hand: cheaper than a subarray view to copy from.
  for (let k = 0; k < 16; k++) out[UID_OFFSET + k] = bytes[uidOffset + k] as number;
  return out;
}

/** Decodes a ServerToAgent (used by the simulator and tests, which play the agent side). */
export function decodeServerToAgent(bytes: Uint8Array): Decoded {
  const m = serverToAgentType.decode(bytes) as unknown as Decoded;
  // Every field, so that an absent sub-message reads as null rather than undefined.
  const out: Decoded = {};
  for (const field of serverToAgentType.fieldsArray) out[field.name] = m[field.name] ?? null;
  return {
    ...out,
    flags: toBigInt(m.flags as Int64),
    capabilities: toBigInt(m.capabilities as Int64),
  };
}

/** Encodes an AgentToServer (simulator and tests). uint64 words may be given as bigint. */
export function encodeAgentToServer(message: Partial<AgentToServer>): Uint8Array {
  const wire: Decoded = {
    ...message,
    sequenceNum: toLong(message.sequenceNum),
    capabilities: toLong(message.capabilities),
    flags: toLong(message.flags),
  };
  return agentToServerType.encode(wire).finish();
}

/** Encodes one sub-message (e.g. "ComponentHealth") for storage; types resolved once. */
export function encodeSubMessage(typeName: string, value: object): Uint8Array {
  return messageType(typeName).encode(value).finish();
}

/**
 * Decodes a stored sub-message; the inverse of encodeSubMessage. A map entry sent without its
 * value reads as an empty message, as in decodeAgentToServer (fields are stored as the agent
 * sent them, prepare.ts).
 */
export function decodeSubMessage<T>(typeName: string, bytes: Uint8Array): T {
  const type = messageType(typeName);
  const decoded = type.decode(bytes) as unknown as Decoded;
  fillMapValues(type, decoded);
  return decoded as unknown as T;
}
