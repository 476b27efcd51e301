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

/**
 * The remote config to send, or undefined. Sent only when the agent's latest capabilities
 * accept remote config, the desired hash differs from the hash the agent last reported (so
 * never again after it reported FAILED for that very hash), and it was not already offered
 * on this session (`offeredHash`).
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
  const configMap: AgentRemoteConfig["config"]["configMap"] = {};
  for (const file of config.files) {
    configMap[file.name] = { body: file.body, contentType: file.contentType };
  }
  return { config: { configMap }, configHash: Buffer.from(config.hash, "hex") };
}

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
 * OpAMP connection settings, or undefined. Offered only to agents that accept OpAMP connection
 * settings and only with an explicit heartbeat interval ≥ 1 s (an offer with interval 0 would
 * turn the Collector supervisor's heartbeats off). The offer names the advertised endpoint and
 * its CA when one is configured; without one it carries the interval alone, never an endpoint
 * guessed from the request. Each distinct offer is made once per agent: the Collector
 * supervisor reconnects on every offer it accepts, so re-offering on every connection would loop.
 */
export function connectionSettingsOffer(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
  advertised: AdvertisedEndpoint | undefined,
  credential?: OfferedCredential,
): ConnectionSettingsOffers | undefined {
  const seconds = desired?.heartbeatIntervalSeconds;
  if (seconds === undefined || !Number.isInteger(seconds) || seconds < 1) return undefined;
  if (!hasFlag(agent.capabilities, AgentCapabilities.AcceptsOpAMPConnectionSettings)) {
    return undefined;
  }
  const ca = advertised?.ca === undefined ? undefined : Buffer.from(advertised.ca);
  const hash = createHash("sha256")
    .update(`${advertised?.url ?? ""}\n${seconds}\n`)
    .update(ca ?? "")
    .update(credential ? `\ncredential:${credential.id}` : "")
    .digest();
  if (agent.offeredSettingsHash === hash.toString("hex")) return undefined;
  if (credential) return credentialOffer(hash, seconds, advertised, ca, credential);
  return {
    hash,
    opamp: {
      ...(advertised ? { destinationEndpoint: advertised.url } : {}),
      ...(ca ? { certificate: { caCert: ca } } : {}),
      heartbeatIntervalSeconds: BigInt(seconds),
    },
  };
}

/**
 * An offer carrying a credential (see CredentialIssuer): the client certificate with the CA
 * that signed it in `certificate` (its `ca_cert` names the signer, as the specification
 * defines it), so the advertised server CA moves to `tls.ca_pem_contents`; and the headers.
 */
function credentialOffer(
  hash: Buffer,
  seconds: number,
  advertised: AdvertisedEndpoint | undefined,
  ca: Buffer | undefined,
  credential: OfferedCredential,
): ConnectionSettingsOffers {
  const certificate = credential.certificate ?? (ca ? { caCert: ca } : undefined);
  return {
    hash,
    opamp: {
      ...(advertised ? { destinationEndpoint: advertised.url } : {}),
      ...(certificate ? { certificate } : {}),
      ...(credential.certificate && ca ? { tls: { caPemContents: ca.toString("utf8") } } : {}),
      ...(credential.headers ? { headers: { headers: credential.headers } } : {}),
      heartbeatIntervalSeconds: BigInt(seconds),
    },
  };
}
