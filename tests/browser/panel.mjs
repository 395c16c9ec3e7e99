// The web panel in Debian's Chromium, driven by playwright-core: set the admin password, log
// in, register a stream, require one-time tokens for publishing, make a publish URL with a
// token, publish to it with ffmpeg, see the stream live, restart the daemon and find the
// settings kept; the system page says what seals the secrets, and after the device TLS key was
// corrupted lists it in red. Screenshots of every page go to tests/browser/artifacts/.
//
// usage: node tests/browser/panel.mjs <rampart binary>

import assert from "node:assert/strict";
import { finish, launchBrowser, startRampart, restart, stop, publish, setupCode, shot } from "./harness.mjs";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const PASSWORD = "panel test password";

async function login(page, base) {
  await page.goto(`${base}/`);
  await page.waitForSelector("#page-login:not([hidden])");
  await page.fill("#login-user", "admin");
  await page.fill("#login-password", PASSWORD);
  await page.click("#login-submit");
  await page.waitForSelector("#page-live:not([hidden])");
}

const rampart = await startRampart({ server: "webrtc.host=127.0.0.1\nrtmps.enabled=true\nrtmps.port=0\n" });
const browser = await launchBrowser(["--allow-loopback-in-peer-connection"]);
await finish(rampart, browser, async () => {
  let base = `http://127.0.0.1:${rampart.ports.HTTP}`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  // Script errors and CSP refusals; an answer with an error status is the page's to show.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));

  // First start: the panel asks for the admin password.
  await page.goto(`${base}/`);
  await page.waitForSelector("#page-login:not([hidden])");
  assert.equal(await page.textContent("#login-title"), "Set the admin password");
  assert.equal(await page.isVisible("#login-setup"), true, "the first password asks for the setup code");
  await shot(page, "01-first-start");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await phone.newPage();
  await small.goto(`${base}/`);
  await small.waitForSelector("#login-setup:visible");
  await shot(small, "01-first-start-phone");
  await phone.close();
  await page.fill("#login-password", PASSWORD);
  await page.fill("#login-repeat", PASSWORD);
  await page.fill("#login-setup", "WRONGCODE234");
  await page.click("#login-submit");
  await page.waitForSelector("#login-error:has-text('setup code')");
  await shot(page, "01-first-start-wrong-code");
  await page.fill("#login-setup", setupCode(rampart).toLowerCase());
  await page.click("#login-submit");
  await page.waitForSelector("#page-live:not([hidden])");
  await shot(page, "02-live-empty");

  // Register a stream.
  await page.click("nav a[href='#streams']");
  await page.fill("#stream-id", "cam1");
  await page.fill("#stream-name", "Front door");
  await page.click("#stream-form button[type=submit]");
  await page.waitForSelector("#stream-rows tr >> text=Front door");
  await shot(page, "03-streams");

  // Require a one-time token to publish, and change the TOTP step.
  await page.click("nav a[href='#settings']");
  await page.waitForSelector("#setting-publishTokenControlEnabled");
  await page.selectOption("#setting-publishTokenControlEnabled", "true");
  await page.fill("#setting-timeTokenPeriod", "5");
  await page.click("#settings-save");
  await page.waitForSelector(".row.invalid >> text=timeTokenPeriod");
  await shot(page, "04-settings-invalid");
  await page.fill("#setting-timeTokenPeriod", "30");
  await page.click("#settings-save");
  await page.waitForFunction(() => document.querySelector("#settings-status").textContent.startsWith("Saved"));
  await shot(page, "05-settings-saved");

  // Make a publish URL with a fresh token, and publish to it.
  await page.click("nav a[href='#urls']");
  await page.waitForFunction(() => document.querySelector("#url-kinds").textContent.includes("one-time token"));
  await page.fill("#url-stream", "cam1");
  await page.click("#url-form button[type=submit]");
  await page.waitForSelector("#url-result:not([hidden])");
  const url = await page.textContent("#url-text");
  assert.match(url, new RegExp(`^rtmp://127\\.0\\.0\\.1:${rampart.ports.RTMP}/LiveApp/cam1\\?token=[A-Za-z0-9_-]{32}$`));
  await shot(page, "06-publish-url");
  const refused = publish(url.replace(/token=.*/, "token=wrong"));
  const ffmpeg = publish(url);

  // The stream shows live in the panel; the refused attempt shows in the event log.
  await page.click("nav a[href='#live']");
  await page.waitForSelector("#live-rows tr >> text=LiveApp/cam1", { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector("#live-rows").textContent.includes("H.264"), null, { timeout: 60_000 });
  await shot(page, "07-live");
  const [player] = await Promise.all([page.waitForEvent("popup"), page.click("#live-rows button.watch")]);
  await player.waitForFunction(() => document.querySelector("#watch-status").textContent.startsWith("WebRTC connected"),
    null, { timeout: 30_000 });
  await player.close();
  await refused.exited;
  await page.click("nav a[href='#events']");
  await page.selectOption("#ev-outcome", "refused");
  await page.waitForSelector("#event-rows tr >> text=one-time token unknown or already used");
  await shot(page, "08-events");
  await page.click("nav a[href='#subscribers']");
  await page.fill("#sub-stream", "cam1");
  await page.fill("#sub-id", "tv1");
  await page.fill("#sub-secret", "JBSWY3DPEHPK3PXPJBSWY3DP");
  await page.click("#sub-form button[type=submit]");
  await page.waitForSelector("#sub-rows tr >> text=tv1");
  await shot(page, "09-subscribers");
  await page.click("nav a[href='#system']");
  await page.waitForSelector("#system-secrets");
  assert.match(await page.textContent("#system-secrets"), /sealed by a key file \(not hardware-protected\)/);
  assert.equal(await page.isVisible("#system-secrets .pill.warn"), true, "a key file is a warning");
  assert.equal(await page.isVisible("#secrets-problems"), false, "every secret opens");
  await shot(page, "10-system");
  ffmpeg.kill("SIGKILL");

  // The device TLS key no longer opens: the restart makes a new certificate and says so.
  writeFileSync(join(rampart.work, "data", "device-key.sealed"), "sealed:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

  // Restart the daemon: the settings, the stream and the account are kept.
  await restart(rampart);
  base = `http://127.0.0.1:${rampart.ports.HTTP}`;
  await login(page, base);
  await page.click("nav a[href='#settings']");
  await page.waitForSelector("#setting-publishTokenControlEnabled");
  assert.equal(await page.inputValue("#setting-publishTokenControlEnabled"), "true");
  assert.equal(await page.inputValue("#setting-timeTokenPeriod"), "30");
  await page.click("nav a[href='#streams']");
  await page.waitForSelector("#stream-rows tr >> text=Front door");
  await page.click("nav a[href='#system']");
  await page.waitForSelector("#secrets-problems:not([hidden])");
  const problems = await page.textContent("#unopenable-rows");
  assert.match(problems, /the device TLS key in .*device-key\.sealed: .*a new device certificate was made/);
  assert.match(await page.textContent("#system-secrets"), /sealed by a key file/);
  await shot(page, "12-system-unopenable");
  const narrow = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const phonePage = await narrow.newPage();
  await login(phonePage, base);
  await phonePage.click("nav a[href='#system']");
  await phonePage.waitForSelector("#secrets-problems:not([hidden])");
  await shot(phonePage, "12-system-unopenable-phone");
  await narrow.close();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav a[href='#settings']");
  await page.waitForSelector("#setting-publishTokenControlEnabled");
  await shot(page, "11-phone-settings");
  assert.deepEqual(errors, [], "no script errors and no CSP violations");
  await stop(rampart);
  console.log("panel flow passed: screenshots in tests/browser/artifacts/");
});
