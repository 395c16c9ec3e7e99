//! Every validation rule, with the exact message a user sees.

mod common;

use common::ConfigDir;
use rampart::config::{self, Problem};

const STREAM_KEY: &str = "0123456789abcdef0123456789abcdef";

fn shown(problems: &[Problem], dir: &ConfigDir) -> Vec<String> {
    let prefix = format!("{}/", dir.path().display());
    problems.iter().map(|p| p.to_string().replace(&prefix, "")).collect()
}

fn errors_of(dir: ConfigDir) -> Vec<String> {
    match config::load(Some(dir.path())) {
        Ok(_) => vec![],
        Err(invalid) => shown(&invalid.problems, &dir),
    }
}

fn app_errors(text: &str) -> Vec<String> {
    errors_of(ConfigDir::new().app("LiveApp", text))
}

fn server_errors(text: &str) -> Vec<String> {
    errors_of(ConfigDir::new().server(text))
}

fn app_warnings(text: &str) -> Vec<String> {
    let dir = ConfigDir::new().app("LiveApp", text);
    let loaded = config::load(Some(dir.path())).expect("loads despite warnings");
    shown(&loaded.warnings, &dir)
}

#[test]
fn value_rules() {
    let cases: &[(&str, &str)] = &[
        (
            "remoteAllowedCIDR=10.0.0.0/8, bad",
            "apps/LiveApp.properties:1: remoteAllowedCIDR: \"10.0.0.0/8, bad\": \"bad\" is not a CIDR (comma-separated CIDRs such as 192.168.1.0/24,10.0.0.5)",
        ),
        (
            "allowedPublisherCIDR=192.168.0.0/33",
            "apps/LiveApp.properties:1: allowedPublisherCIDR: \"192.168.0.0/33\": \"192.168.0.0/33\" is not a CIDR (comma-separated CIDRs such as 192.168.1.0/24,10.0.0.5)",
        ),
        (
            "webhookAuthenticateURL=ftp://auth.example.com/x",
            "apps/LiveApp.properties:1: webhookAuthenticateURL: \"ftp://auth.example.com/x\": expected an http:// or https:// URL (empty: off)",
        ),
        (
            "webhookPlayAuthUrl=auth.example.com/check",
            "apps/LiveApp.properties:1: webhookPlayAuthUrl: \"auth.example.com/check\": expected an http:// or https:// URL (empty: off)",
        ),
        (
            "jwksURL=https://",
            "apps/LiveApp.properties:1: jwksURL: \"https://\": expected an http:// or https:// URL (empty: off)",
        ),
        (
            "timeTokenPeriod=5",
            "apps/LiveApp.properties:1: timeTokenPeriod: \"5\": expected a whole number from 10 to 600",
        ),
        (
            "timeTokenPeriod=86400",
            "apps/LiveApp.properties:1: timeTokenPeriod: \"86400\": expected a whole number from 10 to 600",
        ),
        ("timeTokenPeriod=sixty", "apps/LiveApp.properties:1: timeTokenPeriod: \"sixty\": expected a whole number"),
        ("ipFilterEnabled=yes", "apps/LiveApp.properties:1: ipFilterEnabled: \"yes\": expected true or false"),
        (
            "contentSecurityPolicyHeaderValue=default-src 'self'\\nX-Injected: 1",
            "apps/LiveApp.properties:1: contentSecurityPolicyHeaderValue: \"default-src 'self'\nX-Injected: 1\": expected one line of printable text (an HTTP header value)",
        ),
        (
            "# comment\n\nhashControlPlayEnabled=true",
            "apps/LiveApp.properties:3: hashControlPlayEnabled: is true but tokenHashSecret is not set",
        ),
        (
            "publishJwtControlEnabled=true",
            "apps/LiveApp.properties:1: publishJwtControlEnabled: is true but jwtStreamSecretKey is not set",
        ),
        (
            "playJwtControlEnabled=true\njwtStreamSecretKey=too-short-but-secret",
            "apps/LiveApp.properties:2: jwtStreamSecretKey: \"***\": must be at least 32 characters when playJwtControlEnabled is true",
        ),
        (
            "jwtControlEnabled=true",
            "apps/LiveApp.properties:1: jwtControlEnabled: is true but neither jwtSecretKey nor jwksURL is set",
        ),
        (
            "secureAnalyticEndpoint=true",
            "apps/LiveApp.properties:1: secureAnalyticEndpoint: is true but jwtSecretKey is not set",
        ),
        ("key=\\u12G4", "apps/LiveApp.properties:1: bad \\u escape: expected four hex digits"),
    ];
    for (text, message) in cases {
        assert_eq!(app_errors(text), vec![message.to_string()], "for {text:?}");
    }
}

#[test]
fn server_rules() {
    let cases: &[(&str, &str)] = &[
        ("rtmp.port=70000", "server.properties:1: rtmp.port: \"70000\": expected a port number from 0 to 65535"),
        ("http.port=-1", "server.properties:1: http.port: \"-1\": expected a port number from 0 to 65535"),
        ("http.port=1935", "server.properties:1: http.port: \"1935\": port already taken by rtmp.port"),
        (
            "sslEnabled=true\nhttps.port=5080",
            "server.properties:2: https.port: \"5080\": port already taken by http.port",
        ),
        (
            "rtmp.host=192.168.1.300",
            "server.properties:1: rtmp.host: \"192.168.1.300\": expected an IPv4 or IPv6 address",
        ),
        (
            "logLevel=LOUD",
            "server.properties:1: logLevel: \"LOUD\": expected one of OFF, ERROR, WARN, INFO, DEBUG, TRACE, ALL",
        ),
        (
            "server.jwtServerControlEnabled=true",
            "server.properties:1: server.jwtServerControlEnabled: is true but server.jwtServerSecretKey is not set",
        ),
        (
            "server.allowed_dashboard_CIDR=10.0.0.0/8;10.1.0.0/16",
            "server.properties:1: server.allowed_dashboard_CIDR: \"10.0.0.0/8;10.1.0.0/16\": \"10.0.0.0/8;10.1.0.0/16\" is not a CIDR (comma-separated CIDRs such as 192.168.1.0/24,10.0.0.5)",
        ),
        (
            "server.handshakeTimeout=0",
            "server.properties:1: server.handshakeTimeout: \"0\": expected a whole number of seconds from 1 to 120",
        ),
        (
            "rtmp.maxConnections=0",
            "server.properties:1: rtmp.maxConnections: \"0\": expected a whole number from 1 to 100000",
        ),
        (
            "http.maxConnections=10\nhttp.dashboardReservedConnections=10",
            "server.properties:2: http.dashboardReservedConnections: 10 is not below http.maxConnections (10): only the dashboard CIDR could connect",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(server_errors(text), vec![message.to_string()], "for {text:?}");
    }
}

#[test]
fn ports_may_repeat_on_disjoint_addresses_or_when_unserved() {
    assert_eq!(server_errors("rtmp.host=127.0.0.1\nhttp.host=127.0.0.2\nhttp.port=1935"), Vec::<String>::new());
    assert_eq!(server_errors("https.port=5080"), Vec::<String>::new());
    assert_eq!(server_errors("rtmp.port=0\nhttp.port=0"), Vec::<String>::new());
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let errors = app_errors("timeTokenPeriod=1\nipFilterEnabled=maybe\nwebhookPlayAuthUrl=nope");
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn a_valid_secret_setup_loads() {
    let text = format!(
        "publishJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}\nhashControlPublishEnabled=true\ntokenHashSecret=s"
    );
    assert_eq!(app_errors(&text), Vec::<String>::new());
}

#[test]
fn file_level_problems() {
    let dir = ConfigDir::new().app("Live App", "");
    assert_eq!(
        errors_of(dir),
        vec![
            "apps/Live App.properties: not a valid application name: use 1 to 64 letters, digits, '-' or '_'"
                .to_string()
        ]
    );

    let dir = ConfigDir::new();
    std::fs::write(dir.file("server.properties"), b"logLevel=INFO\nbad=\xff\n").unwrap();
    assert_eq!(errors_of(dir), vec!["server.properties:2: not valid UTF-8 text".to_string()]);

    let missing = config::load(Some(std::path::Path::new("/nonexistent/rampart"))).unwrap_err();
    assert_eq!(missing.to_string(), "/nonexistent/rampart: configuration directory does not exist");
}

#[test]
fn warnings_do_not_stop_the_load() {
    assert_eq!(
        app_warnings("hashControlPublishEnable=true"),
        vec![
            "apps/LiveApp.properties:1: hashControlPublishEnable: unknown setting, ignored (did you mean hashControlPublishEnabled?)"
        ]
    );
    assert_eq!(
        app_warnings("someOtherServersKey=1"),
        vec!["apps/LiveApp.properties:1: someOtherServersKey: unknown setting, ignored"]
    );
    assert_eq!(
        app_warnings("sslEnabled=true"),
        vec![
            "apps/LiveApp.properties:1: sslEnabled: is a server setting: it belongs in server.properties; ignored here"
        ]
    );
    assert_eq!(
        app_warnings("timeTokenPeriod=30\ntimeTokenPeriod=60"),
        vec!["apps/LiveApp.properties:2: timeTokenPeriod: set again (first on line 1); this line wins"]
    );
    assert_eq!(
        app_warnings("enableTimeTokenForPlay=true"),
        vec![
            "apps/LiveApp.properties:1: enableTimeTokenForPlay: is true but timeTokenSecretForPlay is not set: only subscribers registered in the datastore can play"
        ]
    );

    let dir = ConfigDir::new().server("allowedPublisherCIDR=10.0.0.0/8\nserver.allowed_dashboard_CIDR=");
    let loaded = config::load(Some(dir.path())).expect("loads");
    assert_eq!(
        shown(&loaded.warnings, &dir),
        vec![
            "server.properties:1: allowedPublisherCIDR: is an application setting: it belongs in apps/<App>.properties; ignored here",
            "server.properties:2: server.allowed_dashboard_CIDR: is empty: no address can reach the web panel",
        ]
    );
}

#[test]
fn ant_media_prefixes_and_aliases_are_understood() {
    let dir = ConfigDir::new().server("rtmps.enabled=true").app("LiveApp", "settings.timeTokenPeriod=30");
    let settings = config::load(Some(dir.path())).expect("loads").settings;
    assert!(settings.server.rtmps_enabled);
    assert_eq!(settings.apps["LiveApp"].time_token_period, 30);
}
