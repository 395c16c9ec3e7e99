// WHEP playback in Debian's Chromium: ffmpeg publishes H.264 over RTMP, the panel's watch page
// plays it over WebRTC and decodes frames. The application requires a one-time play token: an
// offer without one is refused (403, the reason in the audit log), one with a token made
// through the REST API plays. DELETE ends a session, and sessions opened and closed leave no
// sockets behind; media takes its UDP ports from webrtc.udpPortMin..webrtc.udpPortMax.
//
// usage: node tests/browser/whep.mjs <rampart binary>

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { finish, launchBrowser, startRampart, publish, shot } from "./harness.mjs";

const CYCLES = 5;
const PORTS = [40100, 40110];
const rampart = await startRampart({
  server: `webrtc.host=127.0.0.1\nwebrtc.udpPortMin=${PORTS[0]}\nwebrtc.udpPortMax=${PORTS[1]}\n`,
  app: "playTokenControlEnabled=true\n",
});
const browser = await launchBrowser(["--allow-loopback-in-peer-connection"]);
const base = `http://127.0.0.1:${rampart.ports.HTTP}`;
const openFds = () => readdirSync(`/proc/${rampart.daemon.pid}/fd`).length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function playToken() {
  const expire = Math.floor(Date.now() / 1000) + 600;
  const answer = await fetch(`${base}/LiveApp/rest/v2/broadcasts/cam1/token?expireDate=${expire}&type=play`);
  assert.equal(answer.status, 200);
  return (await answer.json()).tokenId;
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

  const before = openFds();
  for (let i = 0; i < CYCLES; i++) {
    const viewer = await browser.newPage();
    await viewer.goto(`${base}/watch.html?app=LiveApp&stream=cam1&token=${await playToken()}`);
    await waitFor("frames decoded", async () => (await decoded(viewer)) > 5);
    const session = await viewer.evaluate(() => window.rampartSession);
    assert.equal((await fetch(`${base}${session}`, { method: "DELETE" })).status, 200);
    await viewer.close();
  }
  await waitFor(`open descriptors back to ${before}`, async () => openFds() <= before, 15_000);
  console.log(`whep flow passed: ${CYCLES} sessions opened and closed, ${openFds()} descriptors open (${before} before)`);
});
