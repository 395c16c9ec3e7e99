//! Address checks: allowedPublisherCIDR for publishing, remoteAllowedCIDR for the application
//! REST API, server.allowed_dashboard_CIDR for the panel. An IPv4-mapped IPv6 peer
//! (`::ffff:a.b.c.d`, as a dual-stack socket reports it) matches as IPv4.

use crate::config::values::CidrList;
use crate::config::{AppSettings, ServerSettings};
use std::net::{IpAddr, Ipv6Addr};

/// The address as rules see it: IPv4-mapped IPv6 becomes IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The block one subscriber holds, for counting per address: the canonical IPv4 address, or the
/// IPv6 /64.
pub fn address_block(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Whether any network of `list` holds `ip`.
pub fn listed(list: &CidrList, ip: IpAddr) -> bool {
    let ip = canonical(ip);
    list.0.iter().any(|net| net.contains(&ip))
}

/// Whether `ip` may publish to the application (an empty list allows anywhere).
pub fn publisher_allowed(app: &AppSettings, ip: IpAddr) -> bool {
    app.allowed_publisher_cidr.0.is_empty() || listed(&app.allowed_publisher_cidr, ip)
}

/// Whether `ip` may call the application's REST API.
pub fn rest_allowed(app: &AppSettings, ip: IpAddr) -> bool {
    !app.ip_filter_enabled || listed(&app.remote_allowed_cidr, ip)
}

/// Whether `ip` may reach the web panel and the server REST API.
pub fn dashboard_allowed(server: &ServerSettings, ip: IpAddr) -> bool {
    listed(&server.allowed_dashboard_cidr, ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::SettingValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn mapped_ipv6_matches_as_ipv4() {
        let list = CidrList::parse("192.168.0.0/16,2001:db8::/32").unwrap();
        assert!(listed(&list, ip("192.168.4.5")));
        assert!(listed(&list, ip("::ffff:192.168.4.5")));
        assert!(listed(&list, ip("2001:db8::1")));
        assert!(!listed(&list, ip("::ffff:10.0.0.1")));
        assert!(!listed(&list, ip("10.0.0.1")));
    }

    #[test]
    fn settings_decide_each_gate() {
        let mut app = crate::config::load(None).unwrap().settings.apps.remove("LiveApp").unwrap();
        assert!(publisher_allowed(&app, ip("203.0.113.9")), "empty publisher list: anywhere");
        assert!(rest_allowed(&app, ip("127.0.0.1")) && !rest_allowed(&app, ip("127.0.0.2")));
        app.allowed_publisher_cidr = CidrList::parse("10.0.0.0/8").unwrap();
        assert!(!publisher_allowed(&app, ip("203.0.113.9")) && publisher_allowed(&app, ip("::ffff:10.1.1.1")));
        app.ip_filter_enabled = false;
        assert!(rest_allowed(&app, ip("203.0.113.9")));
    }
}
