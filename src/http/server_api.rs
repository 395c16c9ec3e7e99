//! The server REST API under `/rest/v2`: the admin account and logins, settings (read and
//! written through the atomic writer, secrets shown only as set or not), the security events,
//! live streams, Prometheus metrics and the system's status.

use super::login::{Admission, set_cookie};
use super::panel::https_url;
use super::reply::{Reply, failure, json, not_found, parse_body, query_param, success, with_body};
use super::server::{Call, Http, audit, https_port, refuse};
use crate::config::changes::Target;
use crate::config::keys::{APP_KEYS, KeyDef, SERVER_KEYS};
use crate::config::values::{Port, SettingValue};
use crate::config::{Invalid, Problem, SecretSetting};
use crate::store::StoreError;
use http::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// Most security events one answer holds.
pub const MAX_EVENTS: usize = 1000;

/// Whether the call may be made without a login: the first-start and login calls.
pub fn is_open(method: &Method, rest: &[&str]) -> bool {
    matches!(
        (method.as_str(), rest),
        ("GET", ["first-login-status"]) | ("POST", ["users", "initial" | "authenticate" | "logout"])
    )
}

/// Answers `rest` (the path after `/rest/v2/`).
pub async fn handle(call: &Call, rest: &[&str], http: &Http) -> Reply {
    let result = match (call.method.as_str(), rest) {
        ("GET", ["first-login-status"]) => Ok(first_login_status(http)),
        ("POST", ["users", "initial"]) => create_admin(call, http).await,
        ("POST", ["users", "authenticate"]) => authenticate(call, http).await,
        ("POST", ["users", "logout"]) => Ok(logout(call, http)),
        ("GET", ["users", "session"]) => Ok(session(call, http)),
        ("GET", ["applications"]) => Ok(applications(http)),
        ("GET", ["settings-schema"]) => Ok(schema()),
        ("GET", ["server-settings"]) => {
            let server = &call.settings.server;
            Ok(json(StatusCode::OK, &settings_json(&server.rendered(), &server.secrets())))
        }
        ("PUT", ["server-settings"]) => change_settings(call, Target::Server, SERVER_KEYS, http).await,
        ("GET", ["applications", "settings", app]) => app_settings(app, http),
        ("PUT", ["applications", "settings", app]) => {
            change_settings(call, Target::App(app.to_string()), APP_KEYS, http).await
        }
        ("GET", ["security-events"]) => Ok(security_events(call, http)),
        ("GET", ["live-streams"]) => Ok(live_streams(http)),
        ("DELETE", ["live-streams", app, stream]) => Ok(stop_stream(call, app, stream, http)),
        ("GET", ["metrics"]) => Ok(metrics(http)),
        ("GET", ["system-status"]) => Ok(system_status(http)),
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|refusal| refusal)
}

type Answer = Result<Reply, Reply>;

#[derive(Deserialize)]
struct UserPassword {
    #[serde(alias = "username")]
    email: String,
    password: String,
    /// The setup code of the first start (only for the first password).
    #[serde(default, rename = "setupCode")]
    setup_code: String,
}

fn first_login_status(http: &Http) -> Reply {
    let first = http.state.admin.username().is_none();
    json(StatusCode::OK, &json!({ "success": first, "firstLogin": first }))
}

/// Creates the admin account at first start (with the setup code), and logs it in.
async fn create_admin(call: &Call, http: &Http) -> Answer {
    https_only(call, http)?;
    let user: UserPassword = parse_body(&call.body)?;
    admitted(call, &user.email, http).await?;
    let created = http.state.admin.create(&user.email, &user.password, &user.setup_code).await;
    let name = user.email;
    match created {
        Ok(()) => {
            audit(call, "", true, &format!("admin account {name:?} created"), http);
            open_login(call, http)
        }
        Err(e @ StoreError::Exists(..)) => Err(refuse(call, "", StatusCode::FORBIDDEN, &e.to_string(), http)),
        Err(e @ StoreError::Refused(_)) => {
            http.logins.failed(call.block, &name, http.now().instant);
            Err(refuse(call, "", StatusCode::FORBIDDEN, &e.to_string(), http))
        }
        Err(e) => Err(failure(StatusCode::BAD_REQUEST, e)),
    }
}

async fn authenticate(call: &Call, http: &Http) -> Answer {
    https_only(call, http)?;
    let user: UserPassword = parse_body(&call.body)?;
    admitted(call, &user.email, http).await?;
    let valid = http.state.admin.verify(&user.email, &user.password).await;
    let name = user.email;
    if !valid {
        let locked = http.logins.failed(call.block, &name, http.now().instant);
        let why = match locked {
            true => "wrong user name or password; this address is locked out for a while",
            false => "wrong user name or password",
        };
        return Err(refuse(call, "", StatusCode::UNAUTHORIZED, why, http));
    }
    http.logins.succeeded(call.block, &name);
    audit(call, "", true, "logged in", http);
    open_login(call, http)
}

/// With HTTPS on, passwords are not taken over plain HTTP: the refusal names the HTTPS URL.
fn https_only(call: &Call, http: &Http) -> Result<(), Reply> {
    match https_port(http).filter(|_| !call.https) {
        None => Ok(()),
        Some(port) => {
            let why = format!("passwords are sent over HTTPS only: use {}", https_url(call, port));
            Err(refuse(call, "", StatusCode::FORBIDDEN, &why, http))
        }
    }
}

/// Waits out the account's delay, or refuses an address locked out of it.
async fn admitted(call: &Call, account: &str, http: &Http) -> Result<(), Reply> {
    match http.logins.admission(call.block, account, http.now().instant) {
        Admission::After(delay) if delay.is_zero() => Ok(()),
        Admission::After(delay) => {
            tokio::time::sleep(delay).await;
            Ok(())
        }
        Admission::Locked(left) => {
            let why = format!(
                "account locked for this address after repeated failed logins; try again in {} s",
                left.as_secs() + 1
            );
            Err(refuse(call, "", StatusCode::FORBIDDEN, &why, http))
        }
    }
}

fn open_login(call: &Call, http: &Http) -> Answer {
    let opened = http
        .logins
        .open(http.now().instant)
        .ok_or_else(|| failure(StatusCode::SERVICE_UNAVAILABLE, "the system has no randomness to give"))?;
    let mut reply = json(StatusCode::OK, &json!({ "success": true, "csrfToken": opened.csrf }));
    set_session_cookie(&mut reply, Some(&opened.token), call.https);
    Ok(reply)
}

fn logout(call: &Call, http: &Http) -> Reply {
    if let Some(token) = call.session_token() {
        http.logins.close(token);
    }
    let mut reply = success(None);
    set_session_cookie(&mut reply, None, call.https);
    reply
}

fn set_session_cookie(reply: &mut Reply, token: Option<&str>, https: bool) {
    if let Ok(value) = header::HeaderValue::from_str(&set_cookie(token, https)) {
        reply.headers_mut().insert(header::SET_COOKIE, value);
    }
}

/// Who is logged in, and the CSRF token the panel sends with changes.
fn session(call: &Call, http: &Http) -> Reply {
    let csrf = call.session_token().and_then(|t| http.logins.csrf_of(t, http.now().instant));
    json(StatusCode::OK, &json!({ "username": http.state.admin.username(), "csrfToken": csrf }))
}

fn applications(http: &Http) -> Reply {
    let settings = http.state.settings.now();
    json(StatusCode::OK, &json!({ "applications": settings.apps.keys().collect::<Vec<_>>() }))
}

/// Every setting with its doc, default and kind, for the panel's forms.
fn schema() -> Reply {
    let describe = |table: &[KeyDef]| -> Vec<Value> {
        table
            .iter()
            .map(|def| {
                json!({
                    "key": def.key, "kind": kind(def), "default": def.default, "expected": def.expected,
                    "doc": def.doc, "secret": def.secret, "restart": def.restart, "range": def.range,
                })
            })
            .collect()
    };
    json(StatusCode::OK, &json!({ "server": describe(SERVER_KEYS), "app": describe(APP_KEYS) }))
}

/// How a setting is shown in JSON: `bool`, `number`, `secret` or `text`.
fn kind(def: &KeyDef) -> &'static str {
    if def.secret {
        "secret"
    } else if def.expected == <bool as SettingValue>::EXPECTED {
        "bool"
    } else if def.range.is_some() || def.expected == Port::EXPECTED {
        "number"
    } else {
        "text"
    }
}

/// The key of a settings answer that lists the secrets that are set but do not open on this
/// box, with why (`{"tokenHashSecret": "..."}`); a change that sends it back ignores it.
pub const UNOPENABLE_SECRETS: &str = "unopenableSecrets";

/// Settings as one JSON object keyed by property name; a secret shows `***` when set, `""` when
/// not, and [`UNOPENABLE_SECRETS`] names those that are set but do not open.
fn settings_json(rendered: &[(&'static KeyDef, String)], secrets: &[(&'static KeyDef, &SecretSetting)]) -> Value {
    let mut object = Map::new();
    let unopenable: Map<String, Value> = secrets
        .iter()
        .filter_map(|(def, secret)| Some((def.key.to_string(), Value::from(secret.unopenable()?))))
        .collect();
    object.insert(UNOPENABLE_SECRETS.to_string(), Value::Object(unopenable));
    for (def, text) in rendered {
        let value = match kind(def) {
            "bool" => Value::Bool(text == "true"),
            "number" => text.parse::<u64>().map_or_else(|_| Value::String(text.clone()), Value::from),
            _ => Value::String(text.clone()),
        };
        object.insert(def.key.to_string(), value);
    }
    Value::Object(object)
}

fn app_settings(app: &str, http: &Http) -> Answer {
    let settings = http.state.settings.now();
    let app =
        settings.apps.get(app).ok_or_else(|| failure(StatusCode::NOT_FOUND, format!("no application {app:?}")))?;
    Ok(json(StatusCode::OK, &settings_json(&app.rendered(), &app.secrets())))
}

/// Writes the settings of the body (a JSON object keyed by property name) to `target`; a
/// secret sent back as `***` stays as it is.
async fn change_settings(call: &Call, target: Target, table: &[KeyDef], http: &Http) -> Answer {
    let body: Map<String, Value> = parse_body(&call.body)?;
    let mut values = Vec::new();
    for (key, value) in body.into_iter().filter(|(key, _)| key != UNOPENABLE_SECRETS) {
        let secret = table.iter().find(|d| d.answers_to(&key)).is_some_and(|d| d.secret);
        let text = match value {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) if secret && s == "***" => continue,
            Value::String(s) => s,
            Value::Null => String::new(),
            _ => {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    format!("{key}: a setting is a string, number or boolean"),
                ));
            }
        };
        values.push((key, text));
    }
    let app = match &target {
        Target::App(app) => app.clone(),
        Target::Server => String::new(),
    };
    let keys: Vec<String> = values.iter().map(|(k, _)| k.clone()).collect();
    match http.state.settings.change(target, values).await {
        Ok(applied) => {
            let app = app.as_str();
            audit(call, app, true, &format!("settings changed: {}", keys.join(", ")), http);
            let warnings: Vec<Value> = applied.warnings.iter().map(problem_json).collect();
            Ok(json(
                StatusCode::OK,
                &json!({ "success": true, "restartNeeded": applied.restart_needed, "warnings": warnings }),
            ))
        }
        Err(invalid) => Err(invalid_settings(&invalid)),
    }
}

fn invalid_settings(invalid: &Invalid) -> Reply {
    let problems: Vec<Value> = invalid.problems.iter().map(problem_json).collect();
    let message = invalid.problems.first().map_or_else(|| "invalid settings".to_string(), ToString::to_string);
    json(StatusCode::BAD_REQUEST, &json!({ "success": false, "message": message, "problems": problems }))
}

fn problem_json(p: &Problem) -> Value {
    json!({ "key": p.key, "line": p.line, "message": p.message })
}

/// The audit trail, newest first, filtered by `outcome` (allowed or refused), `action`, `app`:
/// up to `limit` decisions and up to `limit` admin events.
fn security_events(call: &Call, http: &Http) -> Reply {
    let q = call.query.as_deref();
    let outcome = query_param(q, "outcome");
    let action = query_param(q, "action");
    let app = query_param(q, "app");
    let limit = query_param(q, "limit").and_then(|l| l.parse().ok()).unwrap_or(MAX_EVENTS).min(MAX_EVENTS);
    let events = http.state.pipeline.audit().newest(limit, |e| {
        outcome.as_deref().is_none_or(|o| (o == "allowed") == e.allowed)
            && action.as_deref().is_none_or(|a| a == e.action)
            && app.as_deref().is_none_or(|a| a == e.app)
    });
    json(StatusCode::OK, &events)
}

fn live_streams(http: &Http) -> Reply {
    let streams: Vec<Value> = http
        .state
        .hub
        .live_streams()
        .into_iter()
        .map(|s| {
            json!({
                "app": s.app, "streamId": s.stream, "publisher": s.publisher, "protocol": s.protocol,
                "videoCodec": s.video, "audioCodec": s.audio, "bitrateKbps": s.bitrate_kbps,
                "readers": s.readers, "started": s.started,
            })
        })
        .collect();
    json(StatusCode::OK, &streams)
}

fn stop_stream(call: &Call, app: &str, stream: &str, http: &Http) -> Reply {
    let ended = http.state.sessions.end_stream(app, stream);
    if ended == 0 {
        return failure(StatusCode::NOT_FOUND, format!("{app}/{stream} is not live"));
    }
    audit(call, app, true, &format!("stream stopped, {ended} session(s) ended"), http);
    success(Some(stream))
}

/// Prometheus text: connections, streams, readers, bytes and decisions by outcome and reason.
fn metrics(http: &Http) -> Reply {
    let services = &http.state;
    let live = services.hub.live_streams();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    gauge("rampart_uptime_seconds", "Seconds since the daemon started.", "gauge", services.started.elapsed().as_secs());
    let connections = http.open_connections.load(std::sync::atomic::Ordering::Relaxed) as u64;
    gauge("rampart_http_connections", "HTTP and HTTPS connections open.", "gauge", connections);
    gauge("rampart_sessions", "Admitted publish and play sessions open.", "gauge", services.sessions.len() as u64);
    gauge("rampart_webrtc_sessions", "WebRTC sessions (WHEP and WHIP) open.", "gauge", services.webrtc.len() as u64);
    gauge("rampart_streams_live", "Streams being published.", "gauge", live.len() as u64);
    gauge("rampart_readers", "Players attached to live streams.", "gauge", live.iter().map(|s| s.readers as u64).sum());
    gauge(
        "rampart_received_bytes_total",
        "Media bytes received from publishers.",
        "counter",
        services.hub.bytes_received(),
    );
    gauge(
        "rampart_config_stuck_writable",
        "1 when the config partition could not be made read-only again.",
        "gauge",
        u64::from(services.settings.stuck_writable()),
    );
    gauge(
        "rampart_audit_dropped_total",
        "Audit lines not written to the audit files: their queue was full.",
        "counter",
        services.pipeline.audit().dropped(),
    );
    let _ = writeln!(out, "# HELP rampart_decisions_total Security decisions by outcome, action and reason.");
    let _ = writeln!(out, "# TYPE rampart_decisions_total counter");
    for ((allowed, action, reason), count) in services.pipeline.audit().counts() {
        let outcome = if allowed { "allowed" } else { "refused" };
        let reason = reason.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = writeln!(
            out,
            "rampart_decisions_total{{outcome=\"{outcome}\",action=\"{action}\",reason=\"{reason}\"}} {count}"
        );
    }
    with_body(StatusCode::OK, "text/plain; version=0.0.4", out)
}

/// Version, uptime, storage and the secrets' state, for the panel's system page.
fn system_status(http: &Http) -> Reply {
    let services = &http.state;
    let data_dir = services.settings.now().server.data_dir.clone();
    // The field types are 32 bits wide on armv7, 64 on aarch64: hence the conversions.
    #[allow(clippy::useless_conversion)]
    let storage = nix::sys::statvfs::statvfs(&data_dir).ok().map(|s| {
        let block = u64::from(s.fragment_size());
        let bytes = |blocks| u64::from(blocks).saturating_mul(block);
        json!({ "totalBytes": bytes(s.blocks()), "freeBytes": bytes(s.blocks_available()) })
    });
    json(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "listeners": services.addresses.iter().map(|(p, a)| json!({ "protocol": p, "port": a.port() })).collect::<Vec<_>>(),
            "uptimeSeconds": services.started.elapsed().as_secs(),
            "dataDir": { "path": data_dir, "storage": storage },
            "auditDropped": services.pipeline.audit().dropped(),
            "configPartition": { "stuckWritable": services.settings.stuck_writable() },
            "secrets": secrets_status(services),
        }),
    )
}

/// What seals the secrets, and every secret kept on disk that does not open.
fn secrets_status(services: &super::state::State) -> Value {
    let store = services.keyring.status();
    json!({
        "store": {
            "description": store.store,
            "hardware": store.hardware,
            "ready": store.ready,
            "problems": store.problems,
        },
        "unopenable": services.unopenable(),
    })
}
