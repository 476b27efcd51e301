/**
 * Protobuf codec for opamp.proto.v1, loaded once from the .proto files next to this module.
 * uint64 words cross this boundary as bigint, never as a JS number, so no bit is lost.
 */
import { fileURLToPath } from "node:url";
import Long from "long";
import protobuf from "protobufjs";
import { SERVER_CAPABILITIES } from "./capabilities.js";
import { MalformedMessageError } from "./errors.js";
import type { AgentToServer, Int64, ServerToAgent } from "./messages.js";

// protobufjs decodes 64-bit fields as Long only when it has a Long implementation.
protobuf.util.Long = Long;
protobuf.configure();

const root = protobuf.loadSync(fileURLToPath(new URL("./proto/opamp.proto", import.meta.url)));
root.resolveAll();

/**
 * protobufjs generates each type's encoder and decoder on first use, which costs tens of
 * milliseconds of event loop for the larger types: done here, once, at load, rather than in
 * the middle of the first agent's message.
 */
function warm(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) {
      nested.decode(nested.encode(nested.create()).finish());
    }
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) warm(nested);
  }
}
warm(root);

/** Looks up a message type of package opamp.proto.v1 by its short name. */
export function messageType(name: string): protobuf.Type {
  return root.lookupType(`opamp.proto.v1.${name}`);
}

const agentToServerType = messageType("AgentToServer");
const serverToAgentType = messageType("ServerToAgent");

/** Converts a decoded 64-bit value to bigint, exactly. */
export function toBigInt(value: Int64 | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === "number") return BigInt(value);
  return BigInt(value.toString());
}

function toLong(value: bigint | undefined): Long | undefined {
  return value === undefined ? undefined : Long.fromString(value.toString(), true);
}

type Decoded = Record<string, unknown>;

/**
 * protobufjs decodes a map entry that has a key but no value as `null`, which its encoder
 * then cannot encode (a stored sub-message is re-encoded): such values become the empty
 * message, as the protobuf specification defines an absent value. Walks only message fields.
 */
function fillMapValues(type: protobuf.Type, message: Decoded): void {
  for (const field of type.fieldsArray) {
    const nested = field.resolvedType;
    const value = message[field.name];
    if (!(nested instanceof protobuf.Type) || value === null || value === undefined) continue;
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

function sub<T>(message: Decoded, field: string): T | null {
  return (message[field] ?? null) as T | null;
}

/**
 * Decodes an AgentToServer. Throws MalformedMessageError when the bytes are not protobuf.
 * Checks no semantic rule (instance_uid length and the like are the session's job).
 */
export function decodeAgentToServer(bytes: Uint8Array): AgentToServer {
  let m: Decoded;
  try {
    m = agentToServerType.decode(bytes) as unknown as Decoded;
    fillMapValues(agentToServerType, m);
  } catch (err) {
    throw new MalformedMessageError(
      `AgentToServer is not valid protobuf: ${(err as Error).message}`,
      {},
      err,
    );
  }
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

/** Encodes a ServerToAgent; `capabilities` defaults to what this server implements. */
export function encodeServerToAgent(message: ServerToAgent): Uint8Array {
  const { errorResponse, connectionSettings } = message;
  const wire: Decoded = {
    ...message,
    flags: toLong(message.flags),
    capabilities: toLong(message.capabilities ?? SERVER_CAPABILITIES),
    errorResponse: errorResponse && {
      ...errorResponse,
      retryInfo: errorResponse.retryInfo && {
        retryAfterNanoseconds: toLong(errorResponse.retryInfo.retryAfterNanoseconds),
      },
    },
    connectionSettings: connectionSettings && {
      ...connectionSettings,
      opamp: connectionSettings.opamp && {
        ...connectionSettings.opamp,
        heartbeatIntervalSeconds: toLong(connectionSettings.opamp.heartbeatIntervalSeconds),
      },
    },
  };
  return serverToAgentType.encode(wire).finish();
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

/** Encodes one sub-message (e.g. "ComponentHealth") for storage. */
export function encodeSubMessage(typeName: string, value: object): Uint8Array {
  return messageType(typeName).encode(value).finish();
}

/** Decodes a stored sub-message; the inverse of encodeSubMessage. */
export function decodeSubMessage<T>(typeName: string, bytes: Uint8Array): T {
  return messageType(typeName).decode(bytes) as unknown as T;
}
