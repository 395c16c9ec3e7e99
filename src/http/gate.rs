//! Who is calling: the client's address (X-Forwarded-For believed only from a trusted proxy),
//! the JWT it presents, and whether a browser sent the call from a page of another origin.

use crate::config::values::{CidrList, OriginList};
use crate::security::credentials::bearer;
use crate::security::ip_filter::{canonical, listed};
use http::HeaderMap;
use std::net::IpAddr;

/// Most X-Forwarded-For hops read; a longer chain is not believed.
const MAX_HOPS: usize = 16;

/// The client's address. The peer's, unless the peer is a trusted proxy: then the nearest
/// X-Forwarded-For hop that is not itself a trusted proxy. A header that cannot be read is not
/// believed at all.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &CidrList) -> IpAddr {
    let peer = canonical(peer);
    if !listed(trusted, peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { return peer };
        for hop in text.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if hops.len() < MAX_HOPS => hops.push(canonical(ip)),
                _ => return peer,
            }
        }
    }
    hops.into_iter().rev().find(|hop| !listed(trusted, *hop)).unwrap_or(peer)
}

/// The JWT of the `Authorization` header (`Bearer <jwt>` or the bare JWT), if any.
pub fn presented_jwt(headers: &HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION)?.to_str().ok().and_then(bearer)
}

/// The server JWT: AMS's `ProxyAuthorization: <jwt>` header, else the `Authorization` one.
pub fn presented_server_jwt(headers: &HeaderMap) -> Option<&str> {
    match headers.get("proxyauthorization").and_then(|v| v.to_str().ok()).and_then(bearer) {
        Some(jwt) => Some(jwt),
        None => presented_jwt(headers),
    }
}

/// Whether the `Origin` header, when there is one, is the box's own (the scheme the call came
/// over and its `Host`) or a listed one. A call without `Origin` (curl, scripts) passes.
pub fn origin_allowed(headers: &HeaderMap, https: bool, listed: &OriginList) -> bool {
    let Some(origin) = headers.get(http::header::ORIGIN) else { return true };
    let (Ok(origin), Some(host)) = (origin.to_str(), headers.get(http::header::HOST).and_then(|h| h.to_str().ok()))
    else {
        return false;
    };
    let own = format!("{}://{host}", if https { "https" } else { "http" });
    origin.eq_ignore_ascii_case(&own) || listed.contains(origin)
}

/// Whether a body sent with POST, PUT or PATCH is declared `application/json`.
pub fn json_declared(method: &http::Method, headers: &HeaderMap, body: &[u8]) -> bool {
    if body.is_empty() || !matches!(*method, http::Method::POST | http::Method::PUT | http::Method::PATCH) {
        return true;
    }
    let declared = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = declared.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::SettingValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted = CidrList::parse("10.0.0.1").unwrap();
        let spoofed = headers(&["127.0.0.1"]);
        assert_eq!(client_ip(ip("203.0.113.9"), &spoofed, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.1"), &spoofed, &trusted), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("10.0.0.1"), &headers(&[]), &trusted), ip("10.0.0.1"));
        let none = CidrList::parse("").unwrap();
        assert_eq!(client_ip(ip("10.0.0.1"), &spoofed, &none), ip("10.0.0.1"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = CidrList::parse("10.0.0.0/8").unwrap();
        let chain = headers(&["127.0.0.1, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &chain, &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("10.0.0.1"), &headers(&["junk, 198.51.100.7"]), &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(ip("::ffff:10.0.0.1"), &headers(&["::ffff:192.0.2.1"]), &trusted), ip("192.0.2.1"));
    }

    #[test]
    fn only_the_own_or_a_listed_origin_passes() {
        let listed = OriginList::parse("https://studio.example.com").unwrap();
        let mut map = HeaderMap::new();
        assert!(origin_allowed(&map, false, &listed), "no Origin: not a browser's cross-origin call");
        map.insert("host", "10.0.0.5:5080".parse().unwrap());
        map.insert("origin", "http://10.0.0.5:5080".parse().unwrap());
        assert!(origin_allowed(&map, false, &listed));
        assert!(!origin_allowed(&map, true, &listed), "another scheme is another origin");
        for foreign in ["http://evil.example", "null", "http://10.0.0.5:5081", "http://10.0.0.5"] {
            map.insert("origin", foreign.parse().unwrap());
            assert!(!origin_allowed(&map, false, &listed), "{foreign}");
        }
        map.insert("origin", "https://Studio.example.com".parse().unwrap());
        assert!(origin_allowed(&map, false, &listed));
        map.remove("host");
        map.insert("origin", "http://10.0.0.5:5080".parse().unwrap());
        assert!(!origin_allowed(&map, false, &listed));
    }

    #[test]
    fn bodies_must_be_declared_json() {
        let mut map = HeaderMap::new();
        assert!(json_declared(&http::Method::GET, &map, b"x"));
        assert!(json_declared(&http::Method::POST, &map, b""));
        assert!(!json_declared(&http::Method::POST, &map, b"{}"));
        map.insert("content-type", "text/plain".parse().unwrap());
        assert!(!json_declared(&http::Method::PUT, &map, b"{}"));
        map.insert("content-type", "Application/JSON; charset=utf-8".parse().unwrap());
        assert!(json_declared(&http::Method::PATCH, &map, b"{}"));
    }

    #[test]
    fn jwt_from_authorization() {
        let mut map = HeaderMap::new();
        assert_eq!(presented_jwt(&map), None);
        map.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(presented_jwt(&map), Some("abc.def.ghi"));
        map.insert("authorization", "abc.def.ghi".parse().unwrap());
        assert_eq!(presented_jwt(&map), Some("abc.def.ghi"));
        assert_eq!(presented_server_jwt(&map), Some("abc.def.ghi"));
        map.insert("proxyauthorization", "server.jwt.here".parse().unwrap());
        assert_eq!(presented_server_jwt(&map), Some("server.jwt.here"));
    }
}
