// A WHEP player: /watch.html?app=<App>&stream=<streamId>[&token=…&jwt=…&subscriberId=…&subscriberCode=…]
// posts a receive-only offer to /<App>/whep/<streamId> with the same query and plays the answer.
"use strict";

async function watch() {
  const params = new URLSearchParams(location.search);
  const app = params.get("app") || "LiveApp", stream = params.get("stream") || "";
  params.delete("app");
  params.delete("stream");
  const status = document.getElementById("watch-status");
  document.getElementById("watch-title").textContent = `${app}/${stream}`;
  const pc = new RTCPeerConnection();
  window.rampartPeer = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (event) => {
    const video = document.getElementById("video");
    if (!video.srcObject) video.srcObject = new MediaStream();
    video.srcObject.addTrack(event.track);
  };
  let audioNote = "";
  const show = () => { status.textContent = `WebRTC ${pc.connectionState}${audioNote}`; };
  pc.onconnectionstatechange = show;
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    setTimeout(resolve, 2000);
  });
  const query = params.toString();
  const response = await fetch(`/${encodeURIComponent(app)}/whep/${encodeURIComponent(stream)}${query ? "?" + query : ""}`, {
    method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
  });
  if (response.status !== 201) {
    const text = await response.text();
    let message = text;
    try { message = JSON.parse(text).message; } catch (_) { /* plain text */ }
    status.textContent = `Not playing: ${message} (HTTP ${response.status})`;
    return;
  }
  const audio = response.headers.get("X-Rampart-Audio");
  if (audio) audioNote = ` · audio ${audio}`;
  show();
  window.rampartSession = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  window.addEventListener("pagehide", () => { fetch(window.rampartSession, { method: "DELETE", keepalive: true }); });
}

document.addEventListener("DOMContentLoaded", () => {
  watch().catch((e) => { document.getElementById("watch-status").textContent = `Not playing: ${e.message}`; });
});
