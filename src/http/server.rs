//! The HTTP and HTTPS listener: accepts up to http.maxConnections, bounds every request (header
//! size and time, body size and time), routes it to the panel, the server API or an
//! application's API after its gate, and adds the security headers to every answer.

use super::gate::{client_ip, json_declared, origin_allowed, presented_jwt, presented_server_jwt};
use super::login::{self, Logins};
use super::reply::{Reply, failure, not_found};
use super::state::State;
use super::{app_api, headers, panel, server_api, webrtc_api};
use crate::config::{AppSettings, Settings};
use crate::net_limits::Slots;
use crate::security::audit::AuditEvent;
use crate::security::ip_filter::{address_block, dashboard_allowed, rest_allowed};
use crate::security::jwks::ApiJwt;
use crate::security::jwt::Hs256;
use crate::security::{Action, Now, Reason, keyed};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Largest request body (a whole settings file as JSON fits many times over).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client has to send its request body (its head: http.requestHeadTimeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection is kept open for further requests at most.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// What the HTTP handlers share.
pub struct Http {
    /// The daemon's parts the handlers use.
    pub state: State,
    /// Panel logins.
    pub logins: Logins,
    /// HTTP and HTTPS connections open now.
    pub open_connections: AtomicUsize,
    /// Time a client has to send a whole request head (http.requestHeadTimeout).
    head_timeout: Duration,
    api_jwts: Arc<Mutex<ApiJwts>>,
}

/// The API JWT checks of the applications (their JWKS caches live in them), built from the
/// settings in force and dropped when a change is announced.
type ApiJwts = HashMap<String, Arc<ApiJwt>>;

impl Http {
    /// The handlers' state over `state`; a task of its own drops the API JWT checks whenever
    /// the settings change (call it on the runtime).
    pub fn new(state: State) -> Arc<Self> {
        let mut changes = state.settings.watch();
        let head_timeout = changes.borrow().server.http_request_head_timeout.0;
        let api_jwts = Arc::new(Mutex::new(ApiJwts::new()));
        let stale = api_jwts.clone();
        drop(tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                stale.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
        }));
        Arc::new(Http {
            head_timeout,
            state,
            logins: Logins::default(),
            open_connections: AtomicUsize::new(0),
            api_jwts,
        })
    }

    /// The moment of a request, on the daemon's clock.
    pub fn now(&self) -> Now {
        Now::from_clock(self.state.clock.as_ref())
    }

    /// The API JWT check of `app` (None: jwtControlEnabled is off), kept until settings change.
    fn api_jwt(&self, app: &str) -> Option<Arc<ApiJwt>> {
        let mut checks = self.api_jwts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(check) = checks.get(app) {
            return Some(check.clone());
        }
        let settings = self.state.settings.now();
        let check = Arc::new(ApiJwt::from_settings(settings.apps.get(app)?, &self.state.keys)?);
        checks.insert(app.to_string(), check.clone());
        Some(check)
    }
}

/// One request, read whole, with who sent it.
pub struct Call {
    /// The method.
    pub method: Method,
    /// The path's segments after the leading `/`.
    pub segments: Vec<String>,
    /// The raw query, if any.
    pub query: Option<String>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The client's address (see [`client_ip`]), canonical (IPv4-mapped IPv6 as IPv4).
    pub ip: IpAddr,
    /// The address block the client's failures count against (see [`address_block`]).
    pub block: IpAddr,
    /// The settings snapshot the request is answered under.
    pub settings: Arc<Settings>,
    /// Whether it came over HTTPS.
    pub https: bool,
}

impl Call {
    /// The session token of the panel login cookie, if one was sent.
    pub fn session_token(&self) -> Option<&str> {
        self.headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).and_then(login::session_token)
    }

    /// Whether the call changes state (and so needs the CSRF token with a login cookie).
    fn changes_state(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }

    fn protocol(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    fn describe(&self) -> String {
        format!("{} /{}", self.method, self.segments.join("/"))
    }
}

/// Accepts on `listener` until the task is dropped. With `tls`, connections are HTTPS. Addresses
/// in the dashboard CIDR may take the slots reserved for them.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, slots: Arc<Slots>, http: Arc<Http>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("http accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let privileged = dashboard_allowed(&http.state.settings.now().server, peer.ip());
        let slot = match slots.take(peer.ip(), privileged) {
            Ok(slot) => slot,
            Err(refusal) => {
                log::warn!("http {peer}: refused, {refusal} (http.maxConnections, http.maxConnectionsPerAddress)");
                continue;
            }
        };
        let (http, tls) = (http.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            http.open_connections.fetch_add(1, Ordering::Relaxed);
            match tls {
                None => serve_connection(tcp, peer, false, http.clone()).await,
                Some(acceptor) => match tokio::time::timeout(http.head_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve_connection(stream, peer, true, http.clone()).await,
                    Ok(Err(e)) => log::info!("https {peer}: TLS handshake failed: {e}"),
                    Err(_) => log::info!("https {peer}: TLS handshake timed out"),
                },
            }
            http.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, https: bool, http: Arc<Http>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let head_timeout = http.head_timeout;
    let service = service_fn(move |request| {
        let http = http.clone();
        async move { Ok::<_, Infallible>(handle(request, peer, https, &http).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
        log::debug!("http {peer}: {e}");
    }
}

async fn handle(request: Request<Incoming>, peer: SocketAddr, https: bool, http: &Http) -> Reply {
    let settings = http.state.settings.now();
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(REQUEST_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return failure(StatusCode::PAYLOAD_TOO_LARGE, "the request body is over 64 KiB"),
        Err(_) => return failure(StatusCode::REQUEST_TIMEOUT, "the request body was not sent in time"),
    };
    let ip = client_ip(peer.ip(), &parts.headers, &settings.server.trusted_proxy_cidr);
    let call = Call {
        ip,
        block: address_block(ip),
        segments: parts.uri.path().trim_start_matches('/').split('/').map(str::to_string).collect(),
        query: parts.uri.query().map(str::to_string),
        method: parts.method,
        headers: parts.headers,
        body,
        https,
        settings,
    };
    let (mut reply, csp) = route(&call, http).await;
    headers::secure(&mut reply, &csp, https);
    reply
}

/// Picks the handler for the path, after its gate; returns the answer and the CSP it carries.
/// The panel and REST API take calls only from the box's own or a listed origin, and REST
/// bodies only as `application/json`; WHIP and WHEP keep their own rules.
async fn route(call: &Call, http: &Http) -> (Reply, String) {
    let settings = call.settings.as_ref();
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let webrtc = matches!(segments.as_slice(), [_, "whep" | "whip", ..]);
    if !webrtc && !origin_allowed(&call.headers, call.https, &settings.server.allowed_origins) {
        let why = "the page calling is from another origin (see server.allowedOrigins)";
        return (refuse(call, "", StatusCode::FORBIDDEN, why, http), String::new());
    }
    let rest = matches!(segments.as_slice(), ["rest", ..] | [_, "rest", ..]);
    if rest && !json_declared(&call.method, &call.headers, &call.body) {
        let why = "the REST API takes bodies as Content-Type: application/json";
        return (failure(StatusCode::UNSUPPORTED_MEDIA_TYPE, why), String::new());
    }
    match segments.as_slice() {
        ["rest", "v2", rest @ ..] => {
            let reply = match dashboard_gate(call, settings, http) {
                Err(refusal) => refusal,
                Ok(()) if server_api::is_open(&call.method, rest) => server_api::handle(call, rest, http).await,
                Ok(()) => match server_access(call, settings, http) {
                    Ok(()) => server_api::handle(call, rest, http).await,
                    Err(refusal) => refusal,
                },
            };
            (reply, String::new())
        }
        [app, "rest", "v2", rest @ ..] if settings.apps.contains_key(*app) => {
            let app_settings = &settings.apps[*app];
            let reply = match app_access(call, app, app_settings, http).await {
                Ok(()) => app_api::handle(call, app, rest, http).await,
                Err(refusal) => refusal,
            };
            (reply, app_settings.content_security_policy_header_value.0.clone())
        }
        [_, "rest", ..] => (not_found(), String::new()),
        [app, kind @ ("whep" | "whip"), stream, session @ ..]
            if settings.apps.contains_key(*app) && session.len() <= 1 =>
        {
            let action = if *kind == "whep" { Action::Play } else { Action::Publish };
            let reply = webrtc_api::handle(call, action, app, stream, session.first().copied(), http).await;
            (reply, settings.apps[*app].content_security_policy_header_value.0.clone())
        }
        _ => {
            let reply = match dashboard_gate(call, settings, http) {
                Err(refusal) => refusal,
                Ok(()) => match https_port(http).filter(|_| !call.https) {
                    Some(port) => panel::to_https(call, port),
                    None => panel::asset(call),
                },
            };
            (reply, String::new())
        }
    }
}

/// The port the HTTPS listener is bound to, when there is one.
pub fn https_port(http: &Http) -> Option<u16> {
    http.state.addresses.iter().find(|(protocol, _)| *protocol == "HTTPS").map(|(_, addr)| addr.port())
}

/// Only the dashboard CIDR reaches the panel and the server API.
fn dashboard_gate(call: &Call, settings: &Settings, http: &Http) -> Result<(), Reply> {
    if dashboard_allowed(&settings.server, call.ip) {
        return Ok(());
    }
    Err(refuse(call, "", StatusCode::FORBIDDEN, "address not in server.allowed_dashboard_CIDR", http))
}

/// A panel login (with its CSRF token for a change), or a server JWT when
/// server.jwtServerControlEnabled.
fn server_access(call: &Call, settings: &Settings, http: &Http) -> Result<(), Reply> {
    if let Some(result) = login_access(call, http) {
        return result.map_err(|why| refuse(call, "", StatusCode::FORBIDDEN, why, http));
    }
    let server = &settings.server;
    match presented_server_jwt(&call.headers) {
        Some(jwt) if server.jwt_server_control_enabled => {
            keyed(&server.jwt_server_secret_key, "server.jwtServerSecretKey", Hs256::new)
                .and_then(|hs256| hs256.check_api(jwt, http.now().unix))
                .map_err(|reason| refuse(call, "", refusal_status(&reason), &format!("server JWT: {reason}"), http))
        }
        _ => Err(refuse(call, "", StatusCode::UNAUTHORIZED, "login required", http)),
    }
}

/// A panel login from the dashboard CIDR; otherwise remoteAllowedCIDR (when ipFilterEnabled)
/// and the application JWT (when jwtControlEnabled).
async fn app_access(call: &Call, app: &str, app_settings: &AppSettings, http: &Http) -> Result<(), Reply> {
    if dashboard_allowed(&call.settings.server, call.ip) && login_access(call, http).is_some_and(|r| r.is_ok()) {
        return Ok(());
    }
    if !rest_allowed(app_settings, call.ip) {
        return Err(refuse(call, app, StatusCode::FORBIDDEN, "address not in remoteAllowedCIDR", http));
    }
    let Some(check) = http.api_jwt(app) else { return Ok(()) };
    let Some(jwt) = presented_jwt(&call.headers) else {
        return Err(refuse(call, app, StatusCode::UNAUTHORIZED, &Reason::JwtMissing.to_string(), http));
    };
    check
        .verify(jwt, http.now())
        .await
        .map_err(|reason| refuse(call, app, refusal_status(&reason), &reason.to_string(), http))
}

/// How a refused JWT is answered: 401, or 503 when the key that checks it is sealed and does
/// not open on this box (the box cannot check any token until the secret is entered again; a
/// panel login still reaches the settings).
pub fn refusal_status(reason: &Reason) -> StatusCode {
    match reason {
        Reason::SecretUnopenable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// `None` without a valid login cookie; with one, whether the call may go on (a change needs
/// the CSRF token).
fn login_access(call: &Call, http: &Http) -> Option<Result<(), &'static str>> {
    let token = call.session_token()?;
    let now = http.now().instant;
    http.logins.csrf_of(token, now)?;
    if !call.changes_state() {
        return Some(Ok(()));
    }
    let presented = call.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    Some(if http.logins.csrf_matches(token, presented, now) { Ok(()) } else { Err("CSRF token missing or wrong") })
}

/// Audits a refused API call and answers it with `status` and `why`.
pub fn refuse(call: &Call, app: &str, status: StatusCode, why: &str, http: &Http) -> Reply {
    audit(call, app, false, why, http);
    failure(status, why)
}

/// Records an API call in the audit trail: a refusal with the decisions, a call that was
/// made (a login, a change) in the admin trail.
pub fn audit(call: &Call, app: &str, allowed: bool, what: &str, http: &Http) {
    let event = AuditEvent {
        time: http.now().unix,
        action: "api",
        protocol: call.protocol(),
        app: app.to_string(),
        stream: call.describe(),
        peer_ip: call.ip,
        allowed,
        reason: what.to_string(),
        count: 1,
    };
    let audit = http.state.pipeline.audit();
    if allowed { audit.record_admin(event) } else { audit.record(event) }
}
