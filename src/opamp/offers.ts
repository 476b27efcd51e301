/**
 * What to offer an agent besides the reply itself: a remote config and connection settings,
 * each decided by the rules of the specification and DESIGN §5.
 */
import { createHash } from "node:crypto";
import type { AgentState } from "./agent-state.js";
import { AgentCapabilities, hasFlag } from "./capabilities.js";
import type { OfferedCredential } from "./credential-hooks.js";
import type { DesiredState } from "./desired.js";
import type { AgentRemoteConfig, ConnectionSettingsOffers } from "./messages.js";
import { ownTelemetryOffers } from "./own-telemetry.js";

/**
 * The remote config to send, or undefined. Sent only when the agent's latest capabilities
 * accept remote config, the desired hash differs from the hash the agent last reported (so
 * never again after it reported FAILED for that very hash), and it was not already offered
 * on this session (`offeredHash`). The offer is shared by every agent offered the same files:
 * callers encode it and never change it.
 */
export function remoteConfigOffer(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  offeredHash: string | null,
): AgentRemoteConfig | undefined {
  const config = desired?.config;
  if (!config) return undefined;
  if (!hasFlag(agent.capabilities, AgentCapabilities.AcceptsRemoteConfig)) return undefined;
  if (config.hash === agent.reportedHash || config.hash === offeredHash) return undefined;
  let offer = remoteConfigs.get(config.files);
  if (offer === undefined || offer.hex !== config.hash) {
    const configMap: AgentRemoteConfig["config"]["configMap"] = {};
    for (const file of config.files) {
      configMap[file.name] = { body: file.body, contentType: file.contentType };
    }
    offer = {
      hex: config.hash,
      config: { config: { configMap }, configHash: Buffer.from(config.hash, "hex") },
    };
    remoteConfigs.set(config.files, offer);
  }
  return offer.config;
}

/**
 * The remote config offer per list of files (a desired state hands out the same list for as
 * long as it holds): one offer object shared by every agent offered it, never changed.
 */
const remoteConfigs = new WeakMap<object, { hex: string; config: AgentRemoteConfig }>();

/**
 * Where agents are told to connect: the operator's `--advertise-url` and, for a wss:// or
 * https:// URL, the PEM CA bundle that verifies it. Never derived from a request (its Host or
 * X-Forwarded-* headers are the client's to forge, and behind a proxy they name the wrong hop).
 */
export interface AdvertisedEndpoint {
  url: string;
  /** PEM CA bundle, offered as `certificate.ca_cert`. */
  ca?: Buffer | string;
}

/**
 * Connection settings, or undefined. The OpAMP part is offered only to agents that accept
 * OpAMP connection settings and only with an explicit heartbeat interval ≥ 1 s (an offer with
 * interval 0 would turn the Collector supervisor's heartbeats off); it names the advertised
 * endpoint and its CA when one is configured, never an endpoint guessed from the request. The
 * own-telemetry part (own-telemetry.ts) goes to agents that report those signals. Each distinct
 * offer is made once per agent: the Collector supervisor reconnects on every OpAMP offer it
 * accepts, so re-offering on every connection would loop.
 */
export function connectionSettingsOffer(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  advertised: AdvertisedEndpoint | undefined,
  credential?: OfferedCredential,
): ConnectionSettingsOffers | undefined {
  const due = settingsDue(agent, desired, advertised, credential);
  if (!due || agent.offeredSettingsHash === due.hex) return undefined;
  return due.offer;
}

/**
 * The connection settings due to `agent` whether or not they were offered already: the OpAMP
 * part (rules above, with the agent's `credential` when the issuer has one) and its own
 * telemetry (own-telemetry.ts), under one hash over everything offered. Undefined when
 * neither part applies to the agent. A credential rides only on the OpAMP part. The offer is
 * shared by every agent due the same: callers encode it and never change it.
 */
export function connectionSettingsFor(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  advertised: AdvertisedEndpoint | undefined,
  credential?: OfferedCredential,
): ConnectionSettingsOffers | undefined {
  return settingsDue(agent, desired, advertised, credential)?.offer;
}

/** The hash (hex) of the connection settings due to `agent`; undefined: none are. */
export function connectionSettingsHash(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  advertised: AdvertisedEndpoint | undefined,
  credential?: OfferedCredential,
): string | undefined {
  return settingsDue(agent, desired, advertised, credential)?.hex;
}

interface DueSettings {
  offer: ConnectionSettingsOffers;
  /** offer.hash in hex, as AgentState.offeredSettingsHash holds it. */
  hex: string;
}

/** Stands for "none" among the memo's keys (WeakMap keys are objects). */
const NONE = {};

/**
 * Offers by their inputs: advertised endpoint → own-telemetry offer (memoised per telemetry
 * object, own-telemetry.ts) → credential object → heartbeat interval ("-": no OpAMP part).
 * Weak keys: an input no one holds any more takes its offers with it. Every input is an
 * object handed out unchanged for as long as it holds (DesiredState, the issuer's answer),
 * so a message whose inputs did not change costs no hashing.
 */
const memo = new WeakMap<object, WeakMap<object, WeakMap<object, Map<string, DueSettings>>>>();

function settingsDue(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  advertised: AdvertisedEndpoint | undefined,
  credential: OfferedCredential | undefined,
): DueSettings | undefined {
  const own = ownTelemetryOffers(agent, desired);
  const seconds = desired?.heartbeatIntervalSeconds;
  const opampDue =
    seconds !== undefined &&
    Number.isInteger(seconds) &&
    seconds >= 1 &&
    hasFlag(agent.capabilities, AgentCapabilities.AcceptsOpAMPConnectionSettings);
  if (!opampDue && !own) return undefined;
  const byOwn = weakLevel(memo, advertised ?? NONE);
  const byCredential = weakLevel(byOwn, own ?? NONE);
  let bySeconds = byCredential.get(credential ?? NONE);
  if (bySeconds === undefined) {
    bySeconds = new Map();
    byCredential.set(credential ?? NONE, bySeconds);
  }
  const key = opampDue ? String(seconds) : "-";
  let due = bySeconds.get(key);
  if (due === undefined) {
    due = computeSettings(opampDue ? seconds : undefined, own, advertised, credential);
    bySeconds.set(key, due);
  }
  return due;
}

function weakLevel<V extends object>(
  map: WeakMap<object, WeakMap<object, V>>,
  key: object,
): WeakMap<object, V> {
  let level = map.get(key);
  if (level === undefined) {
    level = new WeakMap();
    map.set(key, level);
  }
  return level;
}

/** The offer for these inputs; `seconds` undefined: no OpAMP part. */
function computeSettings(
  seconds: number | undefined,
  own: ReturnType<typeof ownTelemetryOffers>,
  advertised: AdvertisedEndpoint | undefined,
  credential: OfferedCredential | undefined,
): DueSettings {
  const ca = advertised?.ca === undefined ? undefined : Buffer.from(advertised.ca);
  const h = createHash("sha256");
  // An OpAMP-only offer hashes as it did before own telemetry existed (no re-offer on upgrade).
  if (seconds !== undefined)
    h.update(`${advertised?.url ?? ""}\n${seconds}\n`)
      .update(ca ?? "")
      .update(credential ? `\ncredential:${credential.id}` : "");
  if (own) h.update("own-telemetry\n").update(own.digest);
  const hash = h.digest();
  let opamp: ConnectionSettingsOffers["opamp"];
  if (seconds !== undefined)
    opamp = credential
      ? credentialSettings(seconds, advertised, ca, credential)
      : {
          ...(advertised ? { destinationEndpoint: advertised.url } : {}),
          ...(ca ? { certificate: { caCert: ca } } : {}),
          heartbeatIntervalSeconds: BigInt(seconds),
        };
  const offer = { hash, ...(opamp ? { opamp } : {}), ...(own?.settings ?? {}) };
  return { offer, hex: hash.toString("hex") };
}

/**
 * The OpAMP settings of an offer carrying a credential (see CredentialIssuer): the client
 * certificate with the CA that signed it in `certificate` (its `ca_cert` names the signer, as
 * the specification defines it), so the advertised server CA moves to `tls.ca_pem_contents`;
 * and the headers.
 */
function credentialSettings(
  seconds: number,
  advertised: AdvertisedEndpoint | undefined,
  ca: Buffer | undefined,
  credential: OfferedCredential,
): NonNullable<ConnectionSettingsOffers["opamp"]> {
  const certificate = credential.certificate ?? (ca ? { caCert: ca } : undefined);
  return {
    ...(advertised ? { destinationEndpoint: advertised.url } : {}),
    ...(certificate ? { certificate } : {}),
    ...(credential.certificate && ca ? { tls: { caPemContents: ca.toString("utf8") } } : {}),
    ...(credential.headers ? { headers: { headers: credential.headers } } : {}),
    heartbeatIntervalSeconds: BigInt(seconds),
  };
}
