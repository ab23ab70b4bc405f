// Drives Arca's web UI in Debian's headless chromium (through playwright-core) as people use it:
// an admin signs in, creates an npm registry, makes a token, copies the registry's .npmrc from "Set
// up client" and publishes with the real npm, finds the package by search, copies its install line,
// quarantines and releases it, sees the audit entries, and signs out; a page from another site that
// posts a form to Arca is refused; a viewer sees no admin action and its posted quarantine is
// refused. Screenshots of the main pages go to $ARCA_SCREENSHOTS.
//
// Run by tests/tests/web_ui.rs, which starts the node and the users, with:
//   ARCA_SERVER, ARCA_ADMIN_USER, ARCA_VIEWER_USER, ARCA_PASSWORD, ARCA_SCREENSHOTS,
//   ARCA_BROWSER_CLIENTS (where playwright-core is installed), CHROMIUM (the browser).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const { chromium } = require(path.join(process.env.ARCA_BROWSER_CLIENTS, "node_modules", "playwright-core"));

const server = process.env.ARCA_SERVER;
const password = process.env.ARCA_PASSWORD;
const shots = process.env.ARCA_SCREENSHOTS;
const registry = "web-npm";
const packageName = "ui-demo";

function step(text) {
  process.stdout.write(`web-ui: ${text}\n`);
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, user) {
  await page.goto(`${server}/ui/`);
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("form.signin button[type=submit]");
  await page.waitForSelector(`.who .user:text-is("${user}")`);
}

async function signOut(page) {
  await page.click(".who button[type=submit]");
  await page.waitForSelector('.who a:text("Sign in")');
}

/// The text of the copy block labelled `label`, copied with its button through the clipboard.
async function copyBlock(page, label) {
  const block = page.locator(".copy", { has: page.locator(`.copy-head span:text-is("${label}")`) }).first();
  await block.locator("button.copy-button").click();
  await block.locator('button.copy-button[data-copied="true"]').waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied.trim(), (await block.locator("pre").innerText()).trim());
  return copied;
}

/// Serves, on another port (so another origin), a page that posts a quarantine form to Arca.
function attackerSite(csrf) {
  const form = `<!doctype html><form id="f" method="post" action="${server}/ui/-/r/${registry}/quarantine">
    <input name="csrf" value="${csrf}"><input name="package" value="${packageName}">
    <input name="version" value="1.0.0"><input name="reason" value="forged"></form>
    <script>document.getElementById("f").submit()</script>`;
  const site = http.createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(form);
  });
  return new Promise((resolve) => site.listen(0, "127.0.0.1", () => resolve(site)));
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);

    step("the sign-in page, reached from / and by keyboard");
    await page.goto(server);
    assert.equal(new URL(page.url()).pathname, "/ui/");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    await shoot(page, "sign-in");

    step("an admin signs in and creates an npm registry");
    await signIn(page, process.env.ARCA_ADMIN_USER);
    await page.click('a:text("New registry")');
    await page.fill("#name", registry);
    await page.selectOption("#package_type", "NPM");
    await page.fill("#description", "JavaScript packages of the web UI test");
    await page.click('form.stacked button[type=submit]');
    await page.waitForSelector(`h1:text-is("${registry}")`);

    step("a token from the Access page");
    await page.click('nav a:text("Access")');
    await page.fill("#token-name", "publish");
    await page.selectOption("#token-role", "contributor");
    await page.fill("#token-registry", registry);
    await page.fill("#token-days", "1");
    await page.click("#new-token button[type=submit]");
    const token = (await copyBlock(page, "Token")).trim();
    assert.match(token, /^arca_/);
    await shoot(page, "access");

    step("the registry's .npmrc, copied from Set up client, lets the real npm publish");
    await page.goto(`${server}/ui/${registry}`);
    const npmrc = await copyBlock(page, ".npmrc");
    assert.ok(npmrc.includes(`${server}/npm/${registry}/`), npmrc);
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "arca-web-ui-"));
    fs.writeFileSync(path.join(project, ".npmrc"), npmrc);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({
      name: packageName, version: "1.0.0", description: "A package the web UI test publishes",
      license: "MIT", main: "index.js",
    }));
    fs.writeFileSync(path.join(project, "index.js"), "module.exports = 42;\n");
    fs.writeFileSync(path.join(project, "README.md"), "# ui-demo\n\nPublished by the web UI test.\n");
    execFileSync("npm", ["publish", "--userconfig", path.join(project, ".npmrc")], {
      cwd: project,
      env: { ...process.env, ARCA_TOKEN: token, npm_config_cache: path.join(project, ".cache") },
      stdio: "inherit",
    });
    await page.reload();
    await page.waitForSelector(`a:text-is("${packageName}")`);
    await shoot(page, "registry");

    step("the package found by search, its version page and install line");
    let found = false;
    for (let attempt = 0; attempt < 50 && !found; attempt++) {
      await page.fill("#q", packageName);
      await page.click("form.search button[type=submit]");
      found = (await page.locator("a.hit").count()) > 0;
      if (!found) await page.waitForTimeout(200);
    }
    assert.ok(found, "the search never found the package");
    await shoot(page, "search");
    await page.click("a.hit");
    await page.waitForSelector("h1 .version");
    assert.equal(await page.locator("h1 .version").innerText(), "1.0.0");
    const install = await copyBlock(page, "Install");
    assert.equal(install.trim(), `npm install ${packageName}@1.0.0`);
    assert.ok((await page.locator(".description").innerText()).includes("A package the web UI test publishes"));
    const versionUrl = page.url();
    assert.equal(new URL(versionUrl).pathname, `/ui/${registry}/${packageName}/1.0.0`);

    step("a page of another site posting a form to Arca is refused");
    const csrf = await page.locator('input[name="csrf"]').first().inputValue();
    const site = await attackerSite(csrf);
    const attacker = await context.newPage();
    await attacker.goto(`http://127.0.0.1:${site.address().port}/`);
    await attacker.waitForLoadState("load");
    await attacker.waitForURL(`${server}/ui/-/r/${registry}/quarantine`);
    assert.ok((await attacker.content()).includes("403"), await attacker.content());
    await attacker.close();
    site.close();
    await page.reload();
    assert.equal(await page.locator("h1 ~ .status").innerText(), "allowed");

    step("quarantine and release");
    await page.fill("#quarantine-reason", "suspicious install script");
    await page.click('button:text("Quarantine")');
    await page.waitForSelector('h1 ~ .status:text-is("quarantined")');
    assert.ok((await page.content()).includes("suspicious install script"));
    const refused = await page.request.get(`${server}/npm/${registry}/${packageName}/-/${packageName}-1.0.0.tgz`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(refused.status(), 403);
    await shoot(page, "version-quarantined");
    await page.fill("#release-reason", "reviewed");
    await page.click('button:text("Release")');
    await page.waitForSelector('h1 ~ .status:text-is("released")');
    await shoot(page, "version");

    step("the package page lists the version with its tag");
    await page.click(`nav.crumbs a:text-is("${packageName}")`);
    await page.waitForSelector("#versions-title");
    assert.ok((await page.locator("table").last().innerText()).includes("latest"));
    await shoot(page, "package");

    step("the audit log shows both, and the version's history too");
    await page.click('nav a:text("Audit")');
    await page.fill('input[name="registry"]', registry);
    await page.click('form.filters button[type=submit]');
    const log = await page.locator("table.audit").innerText();
    assert.ok(log.includes(`quarantine ${packageName}@1.0.0: suspicious install script`), log);
    assert.ok(log.includes(`release ${packageName}@1.0.0: reviewed`), log);
    await shoot(page, "audit");
    await page.goto(versionUrl);
    assert.ok((await page.locator("#history-title ~ .scroll").innerText()).includes("release"));

    step("the cluster page, and a narrow window");
    await page.click('nav a:text("Cluster")');
    await page.waitForSelector("h1:text-is(\"Cluster\")");
    await shoot(page, "cluster");
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(versionUrl);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than a 375px window`);
    await shoot(page, "version-narrow");
    await page.setViewportSize({ width: 1280, height: 900 });

    step("sign out");
    await signOut(page);
    const afterwards = await page.goto(`${server}/ui/-/audit`);
    assert.equal(afterwards.status(), 401);

    step("a viewer sees no admin action, and its quarantine post is refused");
    await signIn(page, process.env.ARCA_VIEWER_USER);
    assert.equal(await page.locator('a:text("New registry")').count(), 0);
    assert.equal(await page.locator('nav a:text("Audit")').count(), 0);
    await page.goto(versionUrl);
    assert.equal(await page.locator('button:text("Quarantine")').count(), 0);
    assert.equal(await page.locator("section.admin").count(), 0);
    const viewerCsrf = await page.locator('input[name="csrf"]').first().inputValue();
    const posted = await page.request.post(`${server}/ui/-/r/${registry}/quarantine`, {
      form: { csrf: viewerCsrf, package: packageName, version: "1.0.0", reason: "viewer" },
      headers: { origin: server },
    });
    assert.equal(posted.status(), 403);
    await page.reload();
    assert.equal(await page.locator("h1 ~ .status").innerText(), "released");
    await signOut(page);
    step("done");
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
