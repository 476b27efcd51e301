/**
 * Connection-settings offers name the advertised endpoint (`--advertise-url`) and its CA, over
 * both transports, and never an endpoint taken from the request: a forged Host or
 * X-Forwarded-* header changes nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsOpAMPConnectionSettings | Caps.ReportsHeartbeat;
const FORGED = {
  Host: "evil.example.com:9999",
  "X-Forwarded-Host": "evil.example.com",
  "X-Forwarded-Proto": "http",
  Forwarded: "host=evil.example.com;proto=http",
};
const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

interface Offer {
  hash: Uint8Array;
  opamp: {
    destinationEndpoint: string;
    heartbeatIntervalSeconds: { toString(): string };
    certificate: { caCert: Uint8Array; cert: Uint8Array; privateKey: Uint8Array } | null;
  };
}

for (const transport of ["websocket", "http"] as const) {
  describe(`connection-settings offers over ${transport}`, () => {
    const servers: TestServer[] = [];
    const agents: TestAgent[] = [];
    const offerFrom = async (t: TestServer, headers?: Record<string, string>) => {
      const a = new TestAgent({ transport, url: t.url, ...(headers ? { headers } : {}) });
      await a.connect();
      agents.push(a);
      return (await a.send({ capabilities: CAPS })).connectionSettings as Offer | null;
    };
    const server = async (advertise?: { url: string; ca?: string }) => {
      const t = await startTestServer(advertise ? { advertise } : {});
      t.desired.all = { heartbeatIntervalSeconds: 20 };
      servers.push(t);
      return t;
    };
    let plain: TestServer;
    let secure: TestServer;
    before(async () => {
      plain = await server();
      secure = await server({ url: "wss://opamp.example.com/v1/opamp", ca: CA });
    });
    after(async () => {
      for (const a of agents) a.close();
      for (const t of servers) await t.close();
    });

    test("without --advertise-url: the heartbeat alone, no endpoint, even with a forged Host", async () => {
      for (const headers of [undefined, FORGED]) {
        const offer = await offerFrom(plain, headers);
        assert.ok(offer, "the heartbeat interval is still offered");
        assert.equal(offer.opamp.destinationEndpoint, "");
        assert.equal(offer.opamp.certificate, null);
        assert.equal(offer.opamp.heartbeatIntervalSeconds.toString(), "20");
      }
    });

    test("with a wss:// --advertise-url: that URL and its CA, whatever the headers say", async () => {
      const honest = await offerFrom(secure);
      const forged = await offerFrom(secure, FORGED);
      for (const offer of [honest, forged]) {
        assert.ok(offer);
        assert.equal(offer.opamp.destinationEndpoint, "wss://opamp.example.com/v1/opamp");
        assert.equal(Buffer.from(offer.opamp.certificate?.caCert ?? []).toString(), CA);
        assert.equal(offer.opamp.certificate?.privateKey.length, 0, "never a private key");
        assert.equal(offer.opamp.heartbeatIntervalSeconds.toString(), "20");
      }
      assert.deepEqual(honest?.hash, forged?.hash, "the same offer for every agent");
    });

    test("a plain ws:// --advertise-url carries no certificate", async () => {
      const t = await server({ url: "ws://10.0.0.5:4320/v1/opamp" });
      const offer = await offerFrom(t, FORGED);
      assert.equal(offer?.opamp.destinationEndpoint, "ws://10.0.0.5:4320/v1/opamp");
      assert.equal(offer?.opamp.certificate, null);
    });
  });
}
