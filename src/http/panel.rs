//! The web panel's assets, embedded in the binary: one page, its script and its style, no
//! framework and nothing fetched from elsewhere (it runs under `default-src 'self'`).

use super::reply::{Reply, failure, with_body};
use super::server::Call;
use http::{HeaderValue, Method, StatusCode, header};

/// (path, content type, body) of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    ("", "text/html; charset=utf-8", include_str!("panel/index.html")),
    ("panel.js", "text/javascript; charset=utf-8", include_str!("panel/panel.js")),
    ("panel.css", "text/css; charset=utf-8", include_str!("panel/panel.css")),
    ("watch.html", "text/html; charset=utf-8", include_str!("panel/watch.html")),
    ("watch.js", "text/javascript; charset=utf-8", include_str!("panel/watch.js")),
];

/// The asset the path names, or 404.
pub fn asset(call: &Call) -> Reply {
    if !matches!(call.method, Method::GET | Method::HEAD) {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "the panel's pages are read with GET");
    }
    let path = call.segments.join("/");
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => with_body(StatusCode::OK, content_type, *body),
        None => failure(StatusCode::NOT_FOUND, "no such page"),
    }
}

/// A redirect of the panel to HTTPS on `port`, at the host the client asked for.
pub fn to_https(call: &Call, port: u16) -> Reply {
    let location = https_url(call, port);
    let mut reply = failure(StatusCode::PERMANENT_REDIRECT, "the panel is served over HTTPS");
    if let Ok(value) = HeaderValue::from_str(&location) {
        reply.headers_mut().insert(header::LOCATION, value);
    }
    reply
}

/// The call's URL over HTTPS on `port`, at the host the client asked for.
pub fn https_url(call: &Call, port: u16) -> String {
    let host = call.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, p)) if p.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let fits = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
    format!("https://{}:{port}/{}", if fits { host } else { "localhost" }, call.segments.join("/"))
}
