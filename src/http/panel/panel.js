// rampart's web panel: plain JavaScript, no framework, nothing loaded from elsewhere. Every
// value from the box is put into the page as text (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { csrf: null, app: null, settingsTarget: "app", schema: null, refresh: null };

/** Calls the REST API; resolves to {status, body}. A 401 sends the user to the login page. */
async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (_) { /* metrics and the like are text */ }
  if (response.status === 401 && !path.includes("/users/")) showLogin();
  return { status: response.status, body: parsed };
}

const appApi = (path) => `/${encodeURIComponent(state.app)}/rest/v2/${path}`;

/** Makes an element with text and classes. */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = cell === null || cell === undefined ? "" : String(cell);
    tr.append(td);
  }
  return tr;
}

function toast(message) {
  const t = $("toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 2500);
}

const when = (unixSeconds) => unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "";
const message = (answer) => (answer.body && answer.body.message) || `HTTP ${answer.status}`;

// ---- login and first start ----

async function showLogin() {
  const first = (await api("GET", "/rest/v2/first-login-status")).body.firstLogin === true;
  $("login-title").textContent = first ? "Set the admin password" : "Log in";
  $("login-hint").textContent = first
    ? "This box has no admin account yet. Choose a password of at least 10 characters, and enter the setup code the box printed in its log and on its console (it is also in the file setup-code of its data directory)."
    : "";
  $("login-repeat-row").hidden = $("login-setup-row").hidden = !first;
  $("login-setup").required = first;
  $("login-submit").textContent = first ? "Set password and log in" : "Log in";
  $("login-form").dataset.first = first ? "1" : "";
  $("nav").hidden = $("logout").hidden = $("app").hidden = true;
  show("login");
}

async function submitLogin(event) {
  event.preventDefault();
  const first = $("login-form").dataset.first === "1";
  const user = $("login-user").value, password = $("login-password").value;
  if (first && password !== $("login-repeat").value) {
    $("login-error").textContent = "The two passwords differ.";
    return;
  }
  const answer = first
    ? await api("POST", "/rest/v2/users/initial", { email: user, password, setupCode: $("login-setup").value.trim() })
    : await api("POST", "/rest/v2/users/authenticate", { email: user, password });
  if (answer.status !== 200) {
    $("login-error").textContent = message(answer);
    return;
  }
  $("login-error").textContent = "";
  $("login-password").value = $("login-repeat").value = $("login-setup").value = "";
  state.csrf = answer.body.csrfToken;
  await enter();
}

async function enter() {
  const apps = (await api("GET", "/rest/v2/applications")).body.applications || [];
  const select = $("app");
  select.replaceChildren(...apps.map((a) => { const o = el("option", a); o.value = a; return o; }));
  state.app = state.app && apps.includes(state.app) ? state.app : apps[0];
  select.value = state.app;
  select.hidden = apps.length < 2;
  $("nav").hidden = $("logout").hidden = false;
  route();
}

// ---- pages ----

const pages = {
  live: loadLive, streams: loadStreams, urls: loadUrls, subscribers: loadSubscribers,
  settings: loadSettings, events: loadEvents, system: loadSystem,
};

function show(name) {
  for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== `page-${name}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.hash === `#${name}`);
}

function route() {
  clearInterval(state.refresh);
  const name = (location.hash || "#live").slice(1);
  const load = pages[name] || loadLive;
  show(pages[name] ? name : "live");
  load();
}

async function loadLive() {
  const draw = async () => {
    const answer = await api("GET", "/rest/v2/live-streams");
    if (answer.status !== 200) return;
    const rows = answer.body.map((s) => {
      const stop = el("button", "Stop", "danger");
      stop.addEventListener("click", async () => {
        const done = await api("DELETE", `/rest/v2/live-streams/${encodeURIComponent(s.app)}/${encodeURIComponent(s.streamId)}`);
        toast(done.status === 200 ? `Stopped ${s.streamId}` : message(done));
        draw();
      });
      const watch = el("button", "Watch", "quiet watch");
      watch.addEventListener("click", async () => {
        try {
          const query = await credentials(s.streamId, "play", 3600, "");
          query.set("app", s.app);
          query.set("stream", s.streamId);
          window.open(`/watch.html?${query}`, "_blank", "noopener");
        } catch (e) { toast(e.message); }
      });
      const actions = el("span");
      actions.append(watch, " ", stop);
      const codecs = [s.videoCodec, s.audioCodec].filter(Boolean).join(" + ");
      return row([`${s.app}/${s.streamId}`, `${s.publisher} (${s.protocol})`, codecs, `${s.bitrateKbps} kbit/s`, s.readers, when(s.started), actions]);
    });
    $("live-rows").replaceChildren(...rows);
    $("live-empty").hidden = rows.length > 0;
  };
  await draw();
  state.refresh = setInterval(draw, 2000);
}

async function loadStreams() {
  const answer = await api("GET", appApi("broadcasts/list/0/50"));
  if (answer.status !== 200) return;
  const rows = answer.body.map((b) => {
    const remove = el("button", "Delete", "danger");
    remove.addEventListener("click", async () => {
      const done = await api("DELETE", appApi(`broadcasts/${encodeURIComponent(b.streamId)}`));
      toast(done.status === 200 ? `Deleted ${b.streamId}` : message(done));
      loadStreams();
    });
    const status = el("span", b.status, b.status === "broadcasting" ? "pill good" : "pill");
    return row([b.streamId, b.name, status, new Date(b.date).toLocaleString(), remove]);
  });
  $("stream-rows").replaceChildren(...rows);
  $("streams-empty").hidden = rows.length > 0;
}

async function registerStream(event) {
  event.preventDefault();
  const body = {};
  if ($("stream-id").value) body.streamId = $("stream-id").value;
  if ($("stream-name").value) body.name = $("stream-name").value;
  const answer = await api("POST", appApi("broadcasts/create"), body);
  $("stream-error").textContent = answer.status === 200 ? "" : message(answer);
  if (answer.status === 200) {
    $("stream-id").value = $("stream-name").value = "";
    toast(`Registered ${answer.body.streamId}`);
    loadStreams();
  }
}

/** The credentials the application's settings require for an action. */
function requiredKinds(settings, action) {
  const p = action === "publish";
  return {
    oneTime: settings[p ? "publishTokenControlEnabled" : "playTokenControlEnabled"],
    hash: settings[p ? "hashControlPublishEnabled" : "hashControlPlayEnabled"],
    jwt: settings[p ? "publishJwtControlEnabled" : "playJwtControlEnabled"],
    totp: settings[p ? "enableTimeTokenForPublish" : "enableTimeTokenForPlay"],
  };
}

async function loadUrls() {
  state.appSettings = (await api("GET", `/rest/v2/applications/settings/${encodeURIComponent(state.app)}`)).body;
  describeKinds();
}

function describeKinds() {
  const kinds = requiredKinds(state.appSettings || {}, $("url-action").value);
  const names = [kinds.oneTime && "one-time token", kinds.hash && "hash token", kinds.jwt && "stream JWT", kinds.totp && "TOTP code"].filter(Boolean);
  $("url-kinds").textContent = names.length ? `Required for ${$("url-action").value}ing: ${names.join(", ")}.` : "No credential is required: anyone can use this URL.";
  $("url-subscriber-row").hidden = !kinds.totp;
}

/** A query with a fresh credential of every kind the application requires for `action`. */
async function credentials(stream, action, validSeconds, subscriberId) {
  await loadUrls();
  const expireDate = Math.floor(Date.now() / 1000) + validSeconds;
  const kinds = requiredKinds(state.appSettings || {}, action);
  const query = new URLSearchParams();
  const ask = async (call) => {
    const answer = await api("GET", appApi(`broadcasts/${encodeURIComponent(stream)}/${call}`));
    if (answer.status !== 200) throw new Error(message(answer));
    return answer.body;
  };
  const both = `expireDate=${expireDate}&type=${action}`;
  if (kinds.oneTime) query.set("token", (await ask(`token?${both}`)).tokenId);
  if (kinds.hash) { query.set("hash", (await ask(`hash-token?${both}`)).tokenId); query.set("expireDate", String(expireDate)); }
  if (kinds.jwt) query.set("jwt", (await ask(`jwt-token?${both}`)).tokenId);
  if (kinds.totp) {
    if (!subscriberId) throw new Error("this application requires a TOTP subscriber: make the URL on the URLs page");
    query.set("subscriberId", subscriberId);
    query.set("subscriberCode", (await ask(`subscribers/${encodeURIComponent(subscriberId)}/totp?type=${action}`)).message);
  }
  return query;
}

async function makeUrl(event) {
  event.preventDefault();
  const stream = $("url-stream").value, action = $("url-action").value;
  let query;
  try {
    query = await credentials(stream, action, Number($("url-valid").value), $("url-subscriber").value);
  } catch (e) {
    $("url-error").textContent = e.message;
    $("url-result").hidden = true;
    return;
  }
  const status = (await api("GET", "/rest/v2/system-status")).body;
  const rtmp = (status.listeners || []).find((l) => l.protocol === "RTMP");
  const port = rtmp && rtmp.port !== 1935 ? `:${rtmp.port}` : "";
  const q = query.toString();
  $("url-text").textContent = `rtmp://${location.hostname}${port}/${state.app}/${stream}${q ? "?" + q : ""}`;
  $("url-error").textContent = "";
  $("url-result").hidden = false;
}

async function loadSubscribers() {
  const stream = $("sub-stream").value;
  if (!stream) { $("sub-rows").replaceChildren(); return; }
  const answer = await api("GET", appApi(`broadcasts/${encodeURIComponent(stream)}/subscribers/list/0/50`));
  if (answer.status !== 200) return;
  const now = Date.now() / 1000;
  $("sub-rows").replaceChildren(...answer.body.map((s) => {
    const until = Math.max(s.blockedPublishUntil, s.blockedPlayUntil);
    const block = el("button", until > now ? "Unblock" : "Block 1 h", "quiet");
    block.addEventListener("click", async () => {
      const seconds = until > now ? 0 : 3600;
      await api("PUT", appApi(`broadcasts/${encodeURIComponent(stream)}/subscribers/${encodeURIComponent(s.subscriberId)}/block/${seconds}/publish_play`), {});
      loadSubscribers();
    });
    const remove = el("button", "Delete", "danger");
    remove.addEventListener("click", async () => {
      await api("DELETE", appApi(`broadcasts/${encodeURIComponent(stream)}/subscribers/${encodeURIComponent(s.subscriberId)}`));
      loadSubscribers();
    });
    const cell = el("span");
    cell.append(block, " ", remove);
    return row([s.subscriberId, s.type, until > now ? when(until) : "", cell]);
  }));
}

async function addSubscriber(event) {
  event.preventDefault();
  const stream = $("sub-stream").value;
  if (!stream) { $("sub-error").textContent = "Choose the stream first."; return; }
  const answer = await api("POST", appApi(`broadcasts/${encodeURIComponent(stream)}/subscribers`),
    { subscriberId: $("sub-id").value, b32Secret: $("sub-secret").value, type: $("sub-type").value });
  $("sub-error").textContent = answer.status === 200 ? "" : message(answer);
  if (answer.status === 200) { $("sub-secret").value = ""; loadSubscribers(); }
}

// ---- settings ----

function settingsPath() {
  return state.settingsTarget === "app" ? `/rest/v2/applications/settings/${encodeURIComponent(state.app)}` : "/rest/v2/server-settings";
}

async function loadSettings() {
  if (!state.schema) state.schema = (await api("GET", "/rest/v2/settings-schema")).body;
  const values = (await api("GET", settingsPath())).body;
  const defs = state.schema[state.settingsTarget === "app" ? "app" : "server"];
  const form = $("settings-form");
  const unopenable = values.unopenableSecrets || {};
  form.replaceChildren(...defs.map((def) => settingRow(def, values[def.key], unopenable[def.key])));
  $("settings-status").textContent = "";
  $("tab-app").classList.toggle("active", state.settingsTarget === "app");
  $("tab-server").classList.toggle("active", state.settingsTarget !== "app");
}

function settingRow(def, value, unopenable) {
  const row = el("div", null, "row");
  row.dataset.key = def.key;
  const name = el("label", null, "key");
  name.append(def.key);
  let input;
  if (def.kind === "bool") {
    input = el("select");
    for (const v of ["true", "false"]) { const o = el("option", v); o.value = v; input.append(o); }
    input.value = String(value);
  } else {
    input = el("input");
    input.type = def.kind === "secret" ? "password" : def.kind === "number" ? "number" : "text";
    input.value = value === undefined || value === null ? "" : String(value);
    if (def.kind === "secret") input.placeholder = value === "***" ? "set (type to replace)" : "not set";
    if (def.kind === "secret" && unopenable) input.placeholder = "cannot be opened on this box: type it again";
    if (def.kind === "secret" && value === "***") input.value = "";
  }
  input.id = `setting-${def.key}`;
  input.dataset.kind = def.kind;
  input.dataset.original = input.value;
  name.htmlFor = input.id;
  row.append(name, input, el("div", def.doc, "doc"));
  if (unopenable) row.append(el("div", `cannot be opened: ${unopenable}`, "problem"));
  if (def.restart) row.append(el("div", "takes effect after a restart", "restart"));
  return row;
}

async function saveSettings() {
  const changes = {};
  for (const input of $("settings-form").querySelectorAll("input, select")) {
    if (input.value === input.dataset.original) continue;
    const key = input.closest(".row").dataset.key;
    const kind = input.dataset.kind;
    changes[key] = kind === "bool" ? input.value === "true" : kind === "number" && input.value !== "" ? Number(input.value) : input.value;
  }
  for (const old of $("settings-form").querySelectorAll(".problem")) old.remove();
  for (const row of $("settings-form").querySelectorAll(".invalid")) row.classList.remove("invalid");
  if (Object.keys(changes).length === 0) { $("settings-status").textContent = "Nothing changed."; return; }
  const answer = await api("PUT", settingsPath(), changes);
  if (answer.status === 200) {
    const restart = answer.body.restartNeeded || [];
    $("settings-status").textContent = restart.length ? `Saved. Restart needed for: ${restart.join(", ")}.` : "Saved and applied.";
    await loadSettings();
    $("settings-status").textContent = restart.length ? `Saved. Restart needed for: ${restart.join(", ")}.` : "Saved and applied.";
    return;
  }
  $("settings-status").textContent = "Not saved: nothing was changed.";
  for (const problem of (answer.body && answer.body.problems) || [{ message: message(answer) }]) {
    const row = problem.key && $("settings-form").querySelector(`.row[data-key="${CSS.escape(problem.key)}"]`);
    const note = el("div", problem.message, "problem");
    if (row) { row.classList.add("invalid"); row.append(note); } else { $("settings-form").prepend(note); }
  }
}

// ---- events and system ----

async function loadEvents() {
  const params = new URLSearchParams({ limit: "300" });
  if ($("ev-outcome").value) params.set("outcome", $("ev-outcome").value);
  if ($("ev-action").value) params.set("action", $("ev-action").value);
  const answer = await api("GET", `/rest/v2/security-events?${params}`);
  if (answer.status !== 200) return;
  const needle = $("ev-text").value.toLowerCase();
  const rows = answer.body
    .filter((e) => !needle || `${e.app} ${e.stream} ${e.peer_ip} ${e.reason}`.toLowerCase().includes(needle))
    .map((e) => row([when(e.time), el("span", e.allowed ? "allowed" : "refused", e.allowed ? "pill good" : "pill bad"),
      `${e.action} (${e.protocol})`, [e.app, e.stream].filter(Boolean).join(" "), e.peer_ip,
      e.count > 1 ? `${e.reason} (${e.count} times)` : e.reason]));
  $("event-rows").replaceChildren(...rows);
}

async function loadSystem() {
  const s = (await api("GET", "/rest/v2/system-status")).body;
  const storage = s.dataDir && s.dataDir.storage;
  const gib = (b) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const uptime = s.uptimeSeconds;
  const facts = [
    ["Version", `rampart ${s.version}`],
    ["Up for", `${Math.floor(uptime / 86400)} d ${Math.floor(uptime % 86400 / 3600)} h ${Math.floor(uptime % 3600 / 60)} min`],
    ["Listening", (s.listeners || []).map((l) => `${l.protocol} ${l.port}`).join(", ")],
    ["Data directory", `${s.dataDir.path}${storage ? ` — ${gib(storage.freeBytes)} free of ${gib(storage.totalBytes)}` : ""}`],
    ["Config partition", s.configPartition.stuckWritable ? "WRITABLE: the last remount to read-only failed" : "read-only between writes"],
  ];
  $("system-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]), el("dt", "Secrets"),
    secretsLine(s.secrets.store));
  showUnopenable(s.secrets.unopenable);
}

// What seals the secrets: a TPM, or a warning for the key file or when no data key is open.
function secretsLine(store) {
  const line = el("dd", null, "secrets");
  line.id = "system-secrets";
  const text = `sealed by ${store.description}`;
  if (!store.ready) line.append(el("span", "NOT READY", "pill bad"), ` no data key is open: secrets cannot be sealed or opened (${text})`);
  else if (!store.hardware) line.append(el("span", "warning", "pill warn"), ` ${text}: anyone with the SD card can open them`);
  else line.append(el("span", "hardware", "pill good"), ` ${text}`);
  return line;
}

// What to do about a secret that does not open, by where it is kept (the TLS key and the data
// keys say it in their reason).
function remedy(item) {
  if (item.place.endsWith(".properties")) return "Enter it again in Security settings and save: it is sealed afresh.";
  if (item.place.startsWith("the datastore")) return "Register it again on the TOTP subscribers page.";
  return "";
}

function showUnopenable(list) {
  $("secrets-problems").hidden = list.length === 0;
  $("unopenable-rows").replaceChildren(...list.map((item) => {
    const entry = el("li");
    entry.append(el("strong", item.key), ` in ${item.place}: ${item.why}`);
    const todo = remedy(item);
    if (todo) entry.append(el("div", todo, "remedy"));
    return entry;
  }));
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", submitLogin);
  $("stream-form").addEventListener("submit", registerStream);
  $("url-form").addEventListener("submit", makeUrl);
  $("url-action").addEventListener("change", describeKinds);
  $("url-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("url-text").textContent); toast("Copied"); } catch (_) { toast("Select the URL and copy it"); }
  });
  $("sub-stream-form").addEventListener("submit", (e) => { e.preventDefault(); loadSubscribers(); });
  $("sub-form").addEventListener("submit", addSubscriber);
  $("settings-save").addEventListener("click", saveSettings);
  $("tab-app").addEventListener("click", () => { state.settingsTarget = "app"; loadSettings(); });
  $("tab-server").addEventListener("click", () => { state.settingsTarget = "server"; loadSettings(); });
  for (const id of ["ev-outcome", "ev-action"]) $(id).addEventListener("change", loadEvents);
  $("ev-text").addEventListener("input", loadEvents);
  $("app").addEventListener("change", () => { state.app = $("app").value; route(); });
  $("logout").addEventListener("click", async () => { await api("POST", "/rest/v2/users/logout"); state.csrf = null; showLogin(); });
  window.addEventListener("hashchange", () => { if (state.csrf) route(); });

  const session = await api("GET", "/rest/v2/users/session");
  if (session.status === 200 && session.body.csrfToken) {
    state.csrf = session.body.csrfToken;
    await enter();
  } else {
    showLogin();
  }
});
