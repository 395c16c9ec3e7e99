// WHIP ingest from Debian's Chromium: a page publishes its fake camera and microphone (H.264 and
// Opus) over WebRTC; a second page plays the stream over WHEP and decodes its video; ffmpeg
// reads it over RTMP and counts video frames.
//
// usage: node tests/browser/whip.mjs <rampart binary>

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { finish, launchBrowser, startRampart, shot } from "./harness.mjs";

const rampart = await startRampart({ server: "webrtc.host=127.0.0.1\n" });
const browser = await launchBrowser(["--allow-loopback-in-peer-connection", "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream"]);
const base = `http://127.0.0.1:${rampart.ports.HTTP}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

await finish(rampart, browser, async () => {
  const sender = await browser.newPage();
  await sender.goto(`${base}/watch.html`);
  const status = await sender.evaluate(async () => {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    const pc = new RTCPeerConnection();
    window.publisher = pc;
    for (const track of media.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
      if (track.kind === "video") {
        const h264 = RTCRtpSender.getCapabilities("video").codecs.filter((c) => c.mimeType === "video/H264");
        transceiver.setCodecPreferences(h264);
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 2000);
    });
    const response = await fetch("/LiveApp/whip/cam2", {
      method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (response.status !== 201) return `${response.status} ${await response.text()}`;
    window.publisherSession = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return "201";
  });
  assert.equal(status, "201");

  await rampart.waitLive("cam2", "whip");

  const viewer = await browser.newPage();
  await viewer.goto(`${base}/watch.html?app=LiveApp&stream=cam2`);
  const started = Date.now();
  const decoded = () => viewer.evaluate(async () => {
    if (!window.rampartPeer) return 0;
    for (const s of (await window.rampartPeer.getStats()).values()) {
      if (s.type === "inbound-rtp" && s.kind === "video") return s.framesDecoded || 0;
    }
    return 0;
  });
  while ((await decoded()) <= 60) {
    assert.ok(Date.now() - started < 30_000, "the WHIP stream decodes in a WHEP viewer within 30 s");
    await sleep(250);
  }
  assert.match(await viewer.textContent("#watch-status"), /^WebRTC connected$/, "Opus audio is not left out");
  await shot(viewer, "13-whip-to-whep");

  const ffmpeg = spawnSync("ffmpeg", ["-hide_banner", "-nostdin", "-i", `rtmp://127.0.0.1:${rampart.ports.RTMP}/LiveApp/cam2`,
    "-t", "4", "-map", "0:v", "-f", "null", "-"], { encoding: "utf8", timeout: 60_000 });
  const frames = Math.max(0, ...[...ffmpeg.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1])));
  assert.ok(frames >= 60, `ffmpeg read ${frames} H.264 frames of the WHIP stream over RTMP:\n${ffmpeg.stderr.split("\n").filter((l) => !l.includes("Audio codec (9)") && !l.includes("If you want to help")).join("\n").slice(-3000)}`);
  console.log(`whip flow passed: ${frames} frames read over RTMP`);
});
