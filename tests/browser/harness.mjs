// What the browser tests share: a rampart daemon on 127.0.0.1 with a temporary configuration,
// Debian's Chromium, ffmpeg publishers, screenshots in tests/browser/artifacts/.

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node <test>.mjs <rampart binary>");
  process.exit(2);
}
const artifacts = join(dirname(fileURLToPath(import.meta.url)), "artifacts");
mkdirSync(artifacts, { recursive: true });
const children = new Set();
// A test takes well under a minute; a hang fails the run instead of stalling it.
setTimeout(() => { console.error("browser test timed out"); process.exit(1); }, 240_000).unref();

/** A configuration directory with these extra server and LiveApp settings, and a daemon on it. */
export async function startRampart({ server = "", app = "" } = {}) {
  const work = mkdtempSync(join(tmpdir(), "rampart-browser-"));
  const config = join(work, "config");
  mkdirSync(join(config, "apps"), { recursive: true });
  writeFileSync(join(config, "server.properties"),
    `rtmp.host=127.0.0.1\nrtmp.port=0\nhttp.host=127.0.0.1\nhttp.port=0\ndata.dir=${join(work, "data")}\n${server}`);
  writeFileSync(join(config, "apps", "LiveApp.properties"), `# The browser test's application\n${app}`);
  const rampart = { work, config };
  await restart(rampart);
  return rampart;
}

/** Starts (or starts again) the daemon; resolves once it listens, with its ports. */
export async function restart(rampart) {
  if (rampart.daemon) await stop(rampart);
  await new Promise((resolve, reject) => {
    const daemon = spawn(binary, ["--config", rampart.config], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(daemon);
    const ports = {};
    let log = "";
    const read = (chunk) => {
      log += chunk;
      for (const m of log.matchAll(/(RTMP|HTTP)\s+listening on 127\.0\.0\.1:(\d+)/g)) ports[m[1]] = Number(m[2]);
      if (ports.RTMP && ports.HTTP) resolve();
    };
    daemon.stdout.on("data", read);
    daemon.stderr.on("data", read);
    daemon.on("exit", (code) => reject(new Error(`rampart exited (${code}) before listening:\n${log}`)));
    Object.assign(rampart, { daemon, ports, log: () => log });
  });
  rampart.waitLive = async (stream, protocol = "rtmp") => {
    const deadline = Date.now() + 60_000;
    while (!rampart.log().includes(`allowed publish ${protocol} LiveApp/${stream}`)) {
      if (Date.now() > deadline) throw new Error(`${stream} never went live`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
}

/** The setup code the first password needs, as the daemon's log says it. */
export function setupCode(rampart) {
  const found = /setup code ([A-Z2-9]{12})/.exec(rampart.log());
  if (!found) throw new Error(`no setup code in the log:\n${rampart.log()}`);
  return found[1];
}

/** Stops the daemon with SIGTERM and waits for it to exit. */
export async function stop(rampart) {
  const exited = new Promise((resolve) => rampart.daemon.once("exit", resolve));
  rampart.daemon.kill("SIGTERM");
  await exited;
  children.delete(rampart.daemon);
  rampart.daemon = null;
}

/** Debian's Chromium, headless, kept off the network, with `extra` flags. */
export function launchBrowser(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", ...extra],
  });
}

/** ffmpeg publishing a 640x360 test pattern (H.264 baseline + AAC) to `url` for two minutes. */
export function publish(url) {
  const ffmpeg = spawn("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-re",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=1000",
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-g", "30",
    "-c:a", "aac", "-t", "120", "-f", "flv", url], { stdio: "ignore" });
  children.add(ffmpeg);
  ffmpeg.exited = new Promise((resolve) => ffmpeg.once("exit", resolve));
  return ffmpeg;
}

/** A full-page screenshot as artifacts/<name>.png. */
export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Kills what the test started and removes its files. */
async function cleanUp(rampart) {
  for (const child of children) child.kill("SIGKILL");
  rmSync(rampart.work, { recursive: true, force: true });
}

/** Runs the test's `body`, then closes the browser and cleans up; exits 1 if the body threw. */
export async function finish(rampart, browser, body) {
  let failed = false;
  try {
    await body();
  } catch (e) {
    failed = true;
    console.error(e);
  } finally {
    await browser.close();
    await cleanUp(rampart);
  }
  process.exit(failed ? 1 : 0);
}
