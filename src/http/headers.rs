//! The headers every answer carries: the Content-Security-Policy (the application's
//! contentSecurityPolicyHeaderValue when set, else a strict default that still lets the panel
//! run), no sniffing, no referrer, no framing, no caching of API answers, and HSTS over HTTPS.

use super::reply::Reply;
use http::header::{self, HeaderName, HeaderValue};

/// The CSP when none is set: only the box's own scripts, styles and images, nothing framed.
pub const STRICT_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to `reply`. `csp` is the configured policy (empty: the strict one);
/// a configured policy that says nothing of framing gets `frame-ancestors 'none'` added.
pub fn secure(reply: &mut Reply, csp: &str, https: bool) {
    let csp = match csp.trim() {
        "" => STRICT_CSP.to_string(),
        set if set.contains("frame-ancestors") => set.to_string(),
        set => format!("{}; frame-ancestors 'none'", set.trim_end_matches(';')),
    };
    let headers = reply.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    let fixed: [(HeaderName, &str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::reply::success;

    #[test]
    fn a_configured_policy_is_sent_and_framing_still_refused() {
        let mut reply = success(None);
        secure(&mut reply, "default-src 'self'; script-src 'self' 'unsafe-inline';", false);
        let csp = reply.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(csp, "default-src 'self'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
        assert!(reply.headers().get(header::STRICT_TRANSPORT_SECURITY).is_none());
        let mut reply = success(None);
        secure(&mut reply, "", true);
        assert_eq!(reply.headers()[header::CONTENT_SECURITY_POLICY], STRICT_CSP);
        assert_eq!(reply.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(reply.headers().get(header::STRICT_TRANSPORT_SECURITY).is_some());
    }
}
