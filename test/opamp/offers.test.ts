/**
 * Offers are memoised per desired-state object (offers.ts, own-telemetry.ts, packages-offer.ts):
 * the same inputs give the same offer without hashing again, and any changed input (a new
 * telemetry object, another capability, another credential, a new package list) a new one,
 * with the hashes the documented formulas give.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { type AgentState, emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { decodeSubMessage, encodeSubMessage } from "../../src/opamp/codec.js";
import type { DesiredState, PackageOffer } from "../../src/opamp/desired.js";
import {
  connectionSettingsFor,
  connectionSettingsHash,
  connectionSettingsOffer,
} from "../../src/opamp/offers.js";
import { allPackagesHash, packageHash, packagesOffer } from "../../src/opamp/packages-offer.js";

const sha = (...parts: (string | Buffer)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

function agent(capabilities: bigint): AgentState {
  const state = emptyAgentState("0".repeat(32), "websocket", 0);
  state.capabilities = capabilities;
  return state;
}

const advertised = { url: "wss://opamp.example/v1/opamp", ca: "-----BEGIN CERTIFICATE-----\n" };

describe("connection-settings offers", () => {
  test("the same inputs give the same offer; its hash is the documented one", () => {
    const desired: DesiredState = { heartbeatIntervalSeconds: 30 };
    const a = agent(Caps.AcceptsOpAMPConnectionSettings);
    const first = connectionSettingsFor(a, desired, advertised);
    const second = connectionSettingsFor(agent(a.capabilities), { ...desired }, advertised);
    assert.ok(first);
    assert.equal(second, first, "memoised: one offer object for equal inputs");
    const expected = sha(`${advertised.url}\n30\n`, Buffer.from(advertised.ca), "");
    assert.deepEqual(Buffer.from(first.hash), expected);
    assert.equal(connectionSettingsHash(a, desired, advertised), expected.toString("hex"));
    assert.deepEqual(
      Buffer.from(first.opamp?.certificate?.caCert ?? []),
      Buffer.from(advertised.ca),
    );

    a.offeredSettingsHash = expected.toString("hex");
    assert.equal(connectionSettingsOffer(a, desired, advertised), undefined, "offered once");
    const other = connectionSettingsFor(a, { heartbeatIntervalSeconds: 31 }, advertised);
    assert.notDeepEqual(Buffer.from(other?.hash ?? []), expected, "another interval");
    assert.ok(connectionSettingsOffer(a, { heartbeatIntervalSeconds: 31 }, advertised));
  });

  test("a credential is part of the offer and its hash, per credential object", () => {
    const desired: DesiredState = { heartbeatIntervalSeconds: 30 };
    const a = agent(Caps.AcceptsOpAMPConnectionSettings);
    const token = (id: string, value: string) => ({
      id,
      headers: [{ key: "Authorization", value }],
    });
    const one = connectionSettingsFor(a, desired, advertised, token("t1", "Bearer a"));
    const two = connectionSettingsFor(a, desired, advertised, token("t2", "Bearer b"));
    assert.deepEqual(one?.opamp?.headers?.headers, [{ key: "Authorization", value: "Bearer a" }]);
    assert.deepEqual(two?.opamp?.headers?.headers, [{ key: "Authorization", value: "Bearer b" }]);
    assert.notDeepEqual(Buffer.from(one?.hash ?? []), Buffer.from(two?.hash ?? []));
  });

  test("own telemetry follows the agent's capabilities and a new telemetry object", () => {
    const telemetry = { metrics: { endpoint: "https://m.example", headers: { k: "v1" } } };
    const desired: DesiredState = { telemetry };
    assert.equal(connectionSettingsFor(agent(Caps.ReportsOwnLogs), desired, undefined), undefined);
    const withMetrics = connectionSettingsFor(agent(Caps.ReportsOwnMetrics), desired, undefined);
    assert.equal(withMetrics?.ownMetrics?.destinationEndpoint, "https://m.example");
    assert.equal(withMetrics?.opamp, undefined);
    // A rotated secret comes as a new desired state, with a new telemetry object: a new offer.
    const rotated = { metrics: { endpoint: "https://m.example", headers: { k: "v2" } } };
    const again = connectionSettingsFor(
      agent(Caps.ReportsOwnMetrics),
      { telemetry: rotated },
      undefined,
    );
    assert.deepEqual(again?.ownMetrics?.headers?.headers, [{ key: "k", value: "v2" }]);
    assert.notDeepEqual(Buffer.from(again?.hash ?? []), Buffer.from(withMetrics?.hash ?? []));
  });
});

describe("package offers", () => {
  const packages: PackageOffer[] = [
    { name: "b", type: "addon", version: "2", sha256: "cd".repeat(32), url: "https://x/b" },
    { name: "a", type: "top-level", version: "1", sha256: "ab".repeat(32), url: "https://x/a" },
  ];

  test("all_packages_hash is the documented one, and the offer is made until reported", () => {
    const byName = [...packages].sort((x, y) => (x.name < y.name ? -1 : 1));
    const expected = sha(...byName.flatMap((p) => [p.name, "\0", packageHash(p)]));
    assert.equal(allPackagesHash(packages), expected.toString("hex"));
    const a = agent(Caps.AcceptsPackages);
    const offer = packagesOffer(a, packages, null);
    assert.deepEqual(Buffer.from(offer?.allPackagesHash ?? []), expected);
    assert.deepEqual(Object.keys(offer?.packages ?? {}).sort(), ["a", "b"]);
    assert.equal(packagesOffer(a, packages, null), offer, "memoised per list");
    assert.equal(packagesOffer(a, packages, expected.toString("hex")), undefined, "offered");
    a.packageStatuses = {
      serverProvidedAllPackagesHash: expected,
    } as AgentState["packageStatuses"];
    assert.equal(packagesOffer(a, packages, null), undefined, "reported: processed");
    assert.equal(packagesOffer(agent(0n), packages, null), undefined, "no AcceptsPackages");
  });

  test("statuses that name no offered hash (decoded: an empty default) do not stop the offer", () => {
    const a = agent(Caps.AcceptsPackages);
    const statuses = encodeSubMessage("PackageStatuses", { packages: {} });
    a.packageStatuses = decodeSubMessage("PackageStatuses", statuses);
    assert.ok(packagesOffer(a, packages, null));
  });

  test("a new list with another version is a new offer", () => {
    const updated = packages.map((p) => (p.name === "a" ? { ...p, version: "1.1" } : p));
    assert.notEqual(allPackagesHash(updated), allPackagesHash(packages));
    const a = agent(Caps.AcceptsPackages);
    a.packageStatuses = {
      serverProvidedAllPackagesHash: Buffer.from(allPackagesHash(packages), "hex"),
    } as AgentState["packageStatuses"];
    assert.equal(packagesOffer(a, updated, null)?.packages.a?.version, "1.1");
  });
});
