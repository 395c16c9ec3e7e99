//! Who is calling: the client's address (X-Forwarded-For believed only from a trusted proxy) and
//! the JWT it presents.

use crate::config::values::CidrList;
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
