// WHEP playback in Debian's Chromium: ffmpeg publishes H.264 over RTMP, the panel's watch page
// plays it over WebRTC and decodes frames. The application requires a one-time play token: an
// offer without one is refused (403, the reason in the audit log), one with a token made
// through the REST API plays. DELETE ends a session; twenty sessions opened and closed leave no
// sockets, sessions or memory behind; media takes its UDP ports from
// webrtc.udpPortMin..webrtc.udpPortMax.
//
// usage: node tests/browser/whep.mjs <rampart binary>

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { finish, launchBrowser, startRampart, publish, setupCode, shot } from "./harness.mjs";

const CYCLES = 20;
/** Cycles before the daemon's memory is first read: its allocator has settled by then. */
const WARM_UP = 5;
/** What the daemon's memory may grow by over the cycles after the warm-up: one leaked session
 * holds ~2.5 MiB, so fifteen leak far more than this. */
const MAX_GROWTH_KIB = 8 * 1024;
const PORTS = [40100, 40110];
const rampart = await startRampart({
  server: `webrtc.host=127.0.0.1\nwebrtc.udpPortMin=${PORTS[0]}\nwebrtc.udpPortMax=${PORTS[1]}\n`,
  app: "playTokenControlEnabled=true\n",
});
const browser = await launchBrowser(["--allow-loopback-in-peer-connection"]);
const base = `http://127.0.0.1:${rampart.ports.HTTP}`;
const openFds = () => readdirSync(`/proc/${rampart.daemon.pid}/fd`).length;
const residentKib = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${rampart.daemon.pid}/status`, "utf8"))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function playToken() {
  const expire = Math.floor(Date.now() / 1000) + 600;
  const answer = await fetch(`${base}/LiveApp/rest/v2/broadcasts/cam1/token?expireDate=${expire}&type=play`);
  assert.equal(answer.status, 200);
  return (await answer.json()).tokenId;
}

/** An admin session cookie for the server API (this first start sets the password). */
async function adminCookie() {
  const answer = await fetch(`${base}/rest/v2/users/initial`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: "admin", password: "the whep test's password", setupCode: setupCode(rampart) }),
  });
  assert.equal(answer.status, 200);
  return answer.headers.getSetCookie()[0].split(";")[0];
}

/** WebRTC sessions open, as /rest/v2/metrics counts them. */
async function openSessions(cookie) {
  const metrics = await (await fetch(`${base}/rest/v2/metrics`, { headers: { cookie } })).text();
  return Number(/^rampart_webrtc_sessions (\d+)$/m.exec(metrics)[1]);
}

/** Frames of video the page's peer connection decoded so far. */
const decoded = (page) => page.evaluate(async () => {
  if (!window.rampartPeer) return 0;
  for (const s of (await window.rampartPeer.getStats()).values()) {
    if (s.type === "inbound-rtp" && s.kind === "video") return s.framesDecoded || 0;
  }
  return 0;
});

async function waitFor(what, condition, ms = 30_000) {
  const started = Date.now();
  while (!(await condition())) {
    assert.ok(Date.now() - started < ms, `${what} within ${ms / 1000} s`);
    await sleep(200);
  }
}

await finish(rampart, browser, async () => {
  publish(`rtmp://127.0.0.1:${rampart.ports.RTMP}/LiveApp/cam1`);
  await rampart.waitLive("cam1");

  const refused = await browser.newPage();
  await refused.goto(`${base}/watch.html?app=LiveApp&stream=cam1`);
  await refused.waitForFunction(() => document.querySelector("#watch-status").textContent.startsWith("Not playing"));
  assert.equal(await refused.textContent("#watch-status"), "Not playing: access denied (HTTP 403)");
  assert.match(rampart.log(), /refused play whep LiveApp\/cam1 from 127\.0\.0\.1: one-time token missing/);
  await refused.close();

  const page = await browser.newPage();
  await page.goto(`${base}/watch.html?app=LiveApp&stream=cam1&token=${await playToken()}`);
  await waitFor("60 frames decoded", async () => (await decoded(page)) > 60);
  assert.match(await page.textContent("#watch-status"), /connected · audio left out: AAC/);
  await shot(page, "12-watch");
  const answer = await page.evaluate(() => window.rampartPeer.remoteDescription.sdp);
  const ports = [...answer.matchAll(/a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 (\d+) typ host/gi)].map((m) => Number(m[1]));
  assert.ok(ports.length > 0 && ports.every((p) => p >= PORTS[0] && p <= PORTS[1]), `candidate ports ${ports} in ${PORTS}`);
  const location = await page.evaluate(() => window.rampartSession);
  assert.match(location, /^\/LiveApp\/whep\/cam1\/[A-Za-z0-9_-]+$/);
  assert.equal((await fetch(`${base}${location}`, { method: "DELETE" })).status, 200);
  assert.equal((await fetch(`${base}${location}`, { method: "DELETE" })).status, 404);
  await page.close();

  const cookie = await adminCookie();
  await waitFor("no WebRTC session open", async () => (await openSessions(cookie)) === 0);
  const before = openFds();
  let settled = 0;
  for (let i = 0; i < CYCLES; i++) {
    if (i === WARM_UP) settled = residentKib();
    const viewer = await browser.newPage();
    await viewer.goto(`${base}/watch.html?app=LiveApp&stream=cam1&token=${await playToken()}`);
    await waitFor("frames decoded", async () => (await decoded(viewer)) > 5);
    const session = await viewer.evaluate(() => window.rampartSession);
    assert.equal((await fetch(`${base}${session}`, { method: "DELETE" })).status, 200);
    await viewer.close();
  }
  await waitFor("every WebRTC session closed", async () => (await openSessions(cookie)) === 0, 15_000);
  await waitFor(`open descriptors back to ${before}`, async () => openFds() <= before, 15_000);
  const growth = residentKib() - settled;
  assert.ok(growth < MAX_GROWTH_KIB, `memory grew by ${growth} KiB over ${CYCLES - WARM_UP} sessions`);
  console.log(`whep flow passed: ${CYCLES} sessions opened and closed, ${openFds()} descriptors open (${before} before), ` +
    `memory ${growth >= 0 ? "+" : ""}${growth} KiB over the last ${CYCLES - WARM_UP}`);
});
