//! Helpers of the sealed-secrets scenarios: hash-token publishes, the security events as the
//! REST API shows them, and a scan of a directory for a secret in any common encoding.

use super::daemon::{Client, publish, wait_for};
use super::rest::Rest;
use base64::Engine as _;
use rampart::clock::{Clock, SystemClock};
use rampart::config::values::TokenHashFormat;
use rampart::secrets::Secret;
use rampart::security::Action;
use rampart::security::hash_token::HashTokens;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// ffmpeg publishing LiveApp's `stream` on `rtmp` with a hash token made with `secret`.
pub fn publish_with_hash(rtmp: SocketAddr, stream: &str, secret: &str) -> Client {
    let exp = SystemClock.unix_secs() + 3600;
    let hash = HashTokens::new(&Secret::new(secret.to_string()), TokenHashFormat::HmacSha256)
        .make(stream, Action::Publish, exp)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    publish(&format!("rtmp://{rtmp}/LiveApp/{stream}?hash={hash}&expireDate={exp}"), 3)
}

/// Waits until `GET /rest/v2/security-events` (called by `rest`) holds a decision on `stream`
/// with this outcome and a reason that contains `reason`.
pub fn wait_event(rest: &Rest, stream: &str, allowed: bool, reason: &str) {
    wait_for(&format!("a security event {reason:?} on {stream}"), || {
        let answer = rest.get("/rest/v2/security-events");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json().as_array().into_iter().flatten().any(|e| {
            e["stream"].as_str().is_some_and(|s| s.contains(stream))
                && e["allowed"].as_bool() == Some(allowed)
                && e["reason"].as_str().is_some_and(|r| r.contains(reason))
        })
    });
}

/// The files under `dir` that hold `secret` raw, in base64 (standard or URL-safe, padded or
/// not) or in hex.
pub fn files_holding(dir: &Path, secret: &str) -> Vec<PathBuf> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    let forms = [
        secret.to_string(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
        bytes.iter().map(|b| format!("{b:02X}")).collect(),
    ];
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(content) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&content);
                if forms.iter().any(|form| text.contains(form.as_str())) {
                    found.push(path);
                }
            }
        }
    }
    found
}
