//! Helpers of the sealed-secrets scenarios: hash tokens, TOTP codes of registered subscribers,
//! and the security events as the REST API shows them.

use super::daemon::{Client, publish, wait_for};
use super::rest::Rest;
use rampart::clock::{Clock, SystemClock};
use rampart::config::values::TokenHashFormat;
use rampart::secrets::Secret;
use rampart::security::hash_token::HashTokens;
use rampart::security::{Action, totp};
use std::net::SocketAddr;

/// `hash=...&expireDate=...` for `action` on `stream`, made with `secret`, valid for an hour.
pub fn hash_query(stream: &str, action: Action, secret: &str) -> String {
    let exp = SystemClock.unix_secs() + 3600;
    let hash = HashTokens::new(&Secret::new(secret.to_string()), TokenHashFormat::HmacSha256)
        .make(stream, action, exp)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("hash={hash}&expireDate={exp}")
}

/// ffmpeg publishing LiveApp's `stream` on `rtmp` for three seconds with a hash token made with
/// `secret`.
pub fn publish_with_hash(rtmp: SocketAddr, stream: &str, secret: &str) -> Client {
    publish(&format!("rtmp://{rtmp}/LiveApp/{stream}?{}", hash_query(stream, Action::Publish, secret)), 3)
}

/// The TOTP code now of the base32 key `b32` (a registered subscriber's), in 60-second steps.
pub fn totp_code(b32: &str) -> String {
    let key = totp::decode_base32(b32).expect("a base32 key");
    totp::code_at(&key, SystemClock.unix_secs(), 60)
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
