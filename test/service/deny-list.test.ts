/**
 * The deny list: a certificate is refused by its serial (however the serial is printed) or
 * by the revoked uid its agent URI names; Git's list replaces itself, the API's is loaded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerCertificate } from "node:tls";
import { DenyList } from "../../src/service/deny-list.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const cert = (serialNumber: string, uid?: string) =>
  ({
    serialNumber,
    subjectaltname: uid ? `URI:urn:opamp-gitops:agent:${uid}` : undefined,
  }) as PeerCertificate;

describe("deny list", () => {
  it("refuses a denied serial in any printing (case, leading zeros), with or without names", () => {
    const d = new DenyList();
    d.loadApi({}, ["035edb99cacc8281"]);
    assert.equal(d.refuses(cert("35EDB99CACC8281")), true);
    assert.equal(d.refuses(cert("035EDB99CACC8281")), true);
    assert.equal(d.refuses(cert("35EDB99CACC8282")), false);
    d.addApi(UID, { at: "2026-01-01T00:00:00.000Z", by: "api:x" }, "00AB");
    assert.equal(d.refuses(cert("ab")), true);
  });

  it("refuses any certificate naming a revoked uid; reports newly revoked uids", () => {
    const d = new DenyList();
    assert.equal(d.refuses(cert("01", UID)), false);
    const added = d.loadApi({ [UID]: JSON.stringify({ at: "t", by: "api:a" }) }, []);
    assert.deepEqual(added, [UID]);
    assert.deepEqual(d.loadApi({ [UID]: JSON.stringify({ at: "t", by: "api:a" }) }, []), []);
    assert.equal(d.refuses(cert("01", UID)), true);
    assert.equal(d.refuses(cert("01", "0190a1b2-c3d4-7e5f-8a9b-000000000009")), false);
  });

  it("Git's list replaces itself and keeps the first commit that listed a uid", () => {
    const d = new DenyList();
    assert.deepEqual(d.setGit([UID], "c1", "t1"), [UID]);
    assert.deepEqual(d.setGit([UID], "c2", "t2"), []);
    assert.deepEqual(d.get(UID), { at: "t1", by: "git:c1" });
    d.setGit([], "c3", "t3");
    assert.equal(d.get(UID), undefined);
    assert.equal(d.all().size, 0);
  });
});
