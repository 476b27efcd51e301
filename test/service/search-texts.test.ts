/**
 * The search index's texts off the event loop (src/service/search-texts.ts): the worker thread
 * answers with the texts the main thread would compute, with the fleet's markers; where the
 * worker cannot start or dies, the same texts are computed here and none is lost; an idle
 * worker stops and the next request starts another.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { attributeView } from "../../src/api/view-attribute.js";
import { Marker, Redactor } from "../../src/redact/index.js";
import { type SearchSubject, searchTextOf } from "../../src/service/search-text.js";
import { SearchTexts } from "../../src/service/search-texts.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const defer = deferred();
const key = randomBytes(32);
const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const subjects: SearchSubject[] = [
  {
    uid: "UID-1",
    attributes: [
      ["host.name", "Edge-Berlin-1"],
      ["api.token", secret],
    ],
  },
  {
    uid: "UID-2",
    attributes: [
      ["host.name", "core-oslo"],
      ["note", `token ${secret} here`],
    ],
  },
  { uid: "UID-3", attributes: [] },
];
/** What the main thread computes with the same key. */
const expected = () => {
  const redactor = new Redactor(new Marker(key));
  return subjects.map((s) => searchTextOf(s, (k, v) => attributeView(redactor, k, v)));
};

test("the worker answers with the texts this thread computes, markers and all", async () => {
  const texts = new SearchTexts(key);
  defer(() => texts.close());
  const got = await texts.texts(subjects);
  assert.deepEqual(got, expected());
  assert.deepEqual(texts.stats, { inWorker: 3, here: 0 });
  assert.equal(texts.workers, 1);
  assert.match(got[0] ?? "", /^uid-1\0edge-berlin-1\0<redacted:[0-9a-f]{6}>$/);
  assert.ok(!got.join("").includes(secret.toLowerCase().slice(4, 20)), "no secret in a text");
  // Requests in flight together are each answered, in order.
  const [a, b] = await Promise.all([texts.texts(subjects.slice(0, 1)), texts.texts(subjects)]);
  assert.deepEqual([a, b], [expected().slice(0, 1), expected()]);
});

test("a worker that cannot start or dies: the texts are computed here, none lost", async () => {
  const missing = new SearchTexts(key, {
    workerUrl: pathToFileURL(join(tempDir("search-texts-"), "no-such-worker.js")),
  });
  defer(() => missing.close());
  assert.deepEqual(await missing.texts(subjects), expected());
  assert.deepEqual(missing.stats, { inWorker: 0, here: 3 });

  const dir = tempDir("search-texts-");
  const dying = join(dir, "dying-worker.mjs");
  writeFileSync(dying, "process.exit(3);\n");
  const dies = new SearchTexts(key, { workerUrl: pathToFileURL(dying) });
  defer(() => dies.close());
  assert.deepEqual(await dies.texts(subjects), expected());
  assert.deepEqual(dies.stats, { inWorker: 0, here: 3 });
  // After a failure no worker is started for a while: the next request is answered here.
  assert.deepEqual(await dies.texts(subjects.slice(1)), expected().slice(1));
  assert.equal(dies.workers, 0);
  assert.deepEqual(dies.stats, { inWorker: 0, here: 5 });
});

test("an idle worker stops; the next request starts another; close() is idempotent", async () => {
  const texts = new SearchTexts(key, { idleMs: 50 });
  assert.deepEqual(await texts.texts(subjects), expected());
  assert.equal(texts.workers, 1);
  await waitFor("the idle worker stopped", () => texts.workers === 0);
  assert.deepEqual(await texts.texts(subjects), expected());
  assert.deepEqual(texts.stats, { inWorker: 6, here: 0 }, "an idle stop is no failure");
  await texts.close();
  await texts.close();
  assert.deepEqual(await texts.texts(subjects.slice(0, 1)), expected().slice(0, 1));
  assert.deepEqual(texts.stats, { inWorker: 6, here: 1 }, "after close, computed here");
});
