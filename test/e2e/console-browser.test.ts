/**
 * The console in a real browser: Debian's Chromium driven by playwright-core (no browser
 * download) against a real `serve` process with eight simulated agents. It logs in, sees the
 * fleet, follows a canary through its stages live (no reload), pauses and resumes it,
 * promotes it, watches a failing canary hold with the agent's error, and opens that agent to
 * see its config diff. Screenshots of each page go to test-output/console/.
 *
 * Skipped, with a message, where /usr/bin/chromium is not installed (.ci/run installs it).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { type CliRun, startServe, testServeArgs } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo, tempDir } from "../sync/helpers/git-repo.js";

const CHROMIUM = "/usr/bin/chromium";
export const SCREENSHOTS = "test-output/console";
const TOKEN = "console-test-token";
const group = (onFailure: string) => `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 25, pause: 1h}, {percent: 100}]
  applyTimeout: 10s
  maxFailures: 0
  onFailure: ${onFailure}
heartbeatInterval: 1s
`;

const skip = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) to run the browser test`;

describe("console in a real browser", { skip }, () => {
  let repo: TestRepo;
  let redis: TestRedis;
  let serve: (CliRun & { apiPort: number }) | undefined;
  let fleet: SimulatedFleet;
  let context: BrowserContext;
  let page: Page;
  let base = "";

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    repo = new TestRepo();
    repo.writeAll({
      "groups/edge/group.yaml": group("rollback"),
      "groups/edge/collector.yaml": collectorYaml("v1"),
    });
    repo.commit("edge v1");
    redis = await testRedis();
    const tokens = join(tempDir("opamp-gitops-console-"), "tokens");
    writeFileSync(tokens, `${TOKEN}\n`);
    const opampPort = await freePort();
    serve = await startServe(
      testServeArgs({
        repo: repo.dir,
        stateDir: tempDir("opamp-gitops-console-state-"),
        redisPrefix: redis.prefix,
        opampPort,
        apiTokensFile: tokens,
      }),
    );
    base = `http://127.0.0.1:${serve.apiPort}`;
    fleet = new SimulatedFleet({
      agents: 8,
      url: `ws://127.0.0.1:${opampPort}/v1/opamp`,
      attributes: { "host.role": "edge" },
      failWhen: "BREAK-ME",
      applyMs: 300,
      heartbeatSeconds: 1,
    });
    await fleet.start();
    context = await chromium.launchPersistentContext(tempDir("opamp-gitops-chromium-"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on("dialog", (d) => void d.accept());
  });

  after(async () => {
    await context?.close();
    await fleet?.stop();
    if (serve && serve.child.exitCode === null) {
      serve.child.kill("SIGTERM");
      await serve.exited;
    }
    await redis?.close();
  });

  const shot = (name: string) =>
    page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  /** Waits (the live refresh) until the rollout's `label` figure reads `value`. */
  const countIs = (label: string, value: string) =>
    page
      .locator(`dl.counts div:has(dt:text-is("${label}")) dd`, {
        hasText: new RegExp(`^${value}$`),
      })
      .waitFor();
  const count = (label: string) =>
    page.locator(`dl.counts div:has(dt:text-is("${label}")) dd`).first();

  test("log in and see the fleet", async () => {
    await page.goto(`${base}/`);
    assert.match(page.url(), /\/login\?next=%2F$/);
    await shot("login");
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(`${base}/`);
    await page.locator("tr[data-uid]").nth(7).waitFor();
    assert.equal(await page.locator("tr[data-uid]").count(), 8);
    await page.getByRole("heading", { name: "Rollouts in flight" }).waitFor();
    await page.locator("progress").first().waitFor();
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === "opamp_gitops_session");
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, "Strict");
    await shot("fleet");
  });

  test("follow the canary live: stage 1 applies, pause, resume, promote to completion", async () => {
    await page.goto(`${base}/groups/edge`);
    await page.evaluate("window.marker = 42");
    await page.locator('.timeline li[aria-current="step"]', { hasText: "Stage 1" }).waitFor();
    // The canary cohort applies (its size depends on how many agents had joined when the
    // stage started): nothing pending, at least one applied, as many as the cohort.
    await countIs("Pending", "0");
    await countIs("Applied", "[1-9][0-9]*");
    assert.equal(await count("Applied").textContent(), await count("Cohort").textContent());
    await page.getByRole("button", { name: "Pause" }).click();
    await page
      .getByText(/paused by console:/)
      .first()
      .waitFor();
    await shot("group-paused");
    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByRole("button", { name: "Pause" }).waitFor();
    await page.getByRole("button", { name: "Promote" }).click();
    await page.locator(".status-completed").waitFor();
    await countIs("Applied", "8");
    // Every change came over server-sent events: the page was never reloaded.
    assert.equal(await page.evaluate("window.marker"), 42);
    await shot("group");
  });

  test("a failing canary holds with the agent's error; the agent page shows the config diff", async () => {
    repo.writeAll({
      "groups/edge/group.yaml": group("pause"),
      "groups/edge/collector.yaml": collectorYaml("BREAK-ME"),
    });
    repo.commit("edge: a config the collector refuses");
    await page
      .locator("table td", { hasText: "collector failed to start" })
      .first()
      .waitFor({ timeout: 60_000 });
    await page
      .getByText(/paused by/)
      .first()
      .waitFor();
    await shot("group-failure");
    await page.locator("table a[href^='/agents/']").first().click();
    await page.getByRole("heading", { name: /Effective config vs desired/ }).waitFor();
    const diff = page.locator("pre.diff");
    await diff.waitFor();
    assert.match((await diff.locator(".del").allTextContents()).join("\n"), /BREAK-ME/);
    assert.match((await diff.locator(".add").allTextContents()).join("\n"), /value: v1/);
    await shot("agent");
  });

  test("validation page, and the fleet at phone width", async () => {
    await page.goto(`${base}/validation`);
    await page.getByRole("heading", { name: "Validation" }).waitFor();
    await shot("validation");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/`);
    await page.locator("tr[data-uid]").first().waitFor();
    const overflow = await page.evaluate(
      "document.documentElement.scrollWidth > window.innerWidth + 1",
    );
    assert.equal(overflow, false, "no sideways scrolling of the page at 390 px");
    await shot("fleet-phone");
    // Keyboard: the skip link is the first stop and moves focus to the main content.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate("document.activeElement?.textContent"), "Skip to content");
  });
});
