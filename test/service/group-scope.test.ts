/**
 * Group scopes as a user writes them: tokens-file lines and the opampClientGroups setting,
 * the errors a bad one gives, and what a set of scopes allows.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { certificateGroups, GroupScopes, parseGroupScope } from "../../src/service/group-scope.js";
import { loadSettings, resolveSettings, SettingsError } from "../../src/settings.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const tokensFile = (text: string) => {
  const file = join(tempDir("opamp-gitops-scope-"), "agents");
  writeFileSync(file, text);
  return file;
};

describe("group scopes", () => {
  test("tokens file lines: scoped and unscoped tokens", () => {
    const file = tokensFile("# agents\nedge-token groups=edge, gateway\n\nopen-token\n");
    assert.deepEqual(loadSettings({ opampTokensFile: file }, {}).opampTokens, [
      { token: "edge-token", scope: "groups=edge, gateway" },
      { token: "open-token" },
    ]);
  });

  test("a bad scope names the file, the token's position and what is expected", () => {
    for (const [line, why] of [
      ["t1 group=edge", /is not a group scope; expected groups=<group>/],
      ["t1 groups=", /names no group/],
      ["t1 groups=Edge!", /"Edge!", which is not a group name/],
    ] as const) {
      const file = tokensFile(`ok\n${line}\n`);
      assert.throws(
        () => loadSettings({ opampTokensFile: file }, {}),
        (err: unknown) =>
          err instanceof SettingsError &&
          err.setting === "--opamp-tokens-file" &&
          err.message.includes(`${file}, token 2:`) &&
          why.test(err.message),
      );
    }
  });

  test("opampClientGroups from a settings file (a mapping) or the environment (JSON)", () => {
    const dir = tempDir("opamp-gitops-scope-");
    const settings = join(dir, "settings.yaml");
    writeFileSync(settings, 'opampClientGroups:\n  agent-1: [edge]\n  "*": ["*"]\n');
    assert.deepEqual(resolveSettings({ settings }, {}).opampClientGroups, {
      "agent-1": ["edge"],
      "*": ["*"],
    });
    assert.deepEqual(
      resolveSettings(
        {},
        { OPAMP_GITOPS_OPAMP_CLIENT_GROUPS: '{"gw.example.com": "gateway,edge"}' },
      ).opampClientGroups,
      { "gw.example.com": ["gateway", "edge"] },
    );
    assert.throws(
      () => resolveSettings({}, { OPAMP_GITOPS_OPAMP_CLIENT_GROUPS: "{not json" }),
      /opampClientGroups: not JSON; expected \{"<certificate CN or SAN>": \["group", …\]\}/,
    );
    writeFileSync(settings, "opampClientGroups:\n  agent-1: [Edge]\n");
    assert.throws(() => resolveSettings({ settings }, {}), /opampClientGroups/);
  });

  test("every scope must allow the group; none allows all", () => {
    const scopes = new GroupScopes();
    assert.equal(scopes.allows([], "edge"), true);
    assert.equal(scopes.allows(["groups=edge,gateway"], "edge"), true);
    assert.equal(scopes.allows(["groups=edge,gateway", "groups=gateway"], "edge"), false);
    assert.equal(scopes.allows(["groups="], "edge"), false);
    assert.equal(scopes.allows(["not a scope"], "edge"), false);
    assert.deepEqual([...parseGroupScope("groups= a , b")], ["a", "b"]);
  });

  test('certificate names: the first the map holds decides; others get "*" or nothing', () => {
    const scope = certificateGroups({ "agent-1": ["edge"], "gw.example.com": ["gateway"] });
    assert.equal(scope(["agent-1", "gw.example.com"]), "groups=edge");
    assert.equal(scope(["x", "gw.example.com"]), "groups=gateway");
    assert.equal(scope(["unknown"]), "groups=");
    const open = certificateGroups({ "agent-1": ["edge"], "*": ["*"] });
    assert.equal(open(["unknown"]), undefined);
  });
});
