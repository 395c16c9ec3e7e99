//! Rules that tie settings together: an enabled mechanism has its secret, listeners do not
//! collide. Each problem is reported at the line of the key that needs fixing. A sealed secret
//! counts as set whether or not it opens (what needs it refuses); its length is checked when
//! its clear value was given (in a file by hand, or through a change, before it is sealed).

use super::keys::{AppSettings, ServerSettings};
use super::load::FileSource;
use super::secret_setting::SecretSetting;
use super::values::Port;
use std::net::IpAddr;

/// The shortest stream JWT key accepted (HS256 wants a key as long as its 256-bit output).
pub const MIN_STREAM_JWT_KEY_CHARS: usize = 32;

/// Checks the rules between server settings.
pub fn check_server(server: &ServerSettings, source: &mut FileSource<'_>) {
    if server.jwt_server_control_enabled && !server.jwt_server_secret_key.is_set() {
        needs(source, "server.jwtServerControlEnabled", "server.jwtServerSecretKey is not set");
    }
    if server.allowed_dashboard_cidr.0.is_empty() {
        source.warning("server.allowed_dashboard_CIDR", "is empty: no address can reach the web panel".into());
    }
    if server.tls_cert_file.is_some() != server.tls_key_file.is_some() {
        let (set, unset) = if server.tls_cert_file.is_some() {
            ("server.tlsCertFile", "server.tlsKeyFile")
        } else {
            ("server.tlsKeyFile", "server.tlsCertFile")
        };
        source.problem(set, format!("is set but {unset} is not: give both or neither"));
    }
    check_ports(server, source);
    let (Port(min), Port(max)) = (server.webrtc_udp_port_min, server.webrtc_udp_port_max);
    if min > max {
        source.problem("webrtc.udpPortMin", format!("{min} is above webrtc.udpPortMax ({max})"));
    }
    let (reserved, total) = (server.http_dashboard_reserved_connections, server.http_max_connections);
    if reserved >= total {
        let why =
            format!("{reserved} is not below http.maxConnections ({total}): only the dashboard CIDR could connect");
        source.problem("http.dashboardReservedConnections", why);
    }
}

/// Checks the rules between one application's settings.
pub fn check_app(app: &AppSettings, source: &mut FileSource<'_>) {
    let hash_on = first_enabled(&[
        ("hashControlPublishEnabled", app.hash_control_publish_enabled),
        ("hashControlPlayEnabled", app.hash_control_play_enabled),
    ]);
    if let Some(key) = hash_on.filter(|_| !app.token_hash_secret.is_set()) {
        needs(source, key, "tokenHashSecret is not set");
    }

    let stream_jwt_on = first_enabled(&[
        ("publishJwtControlEnabled", app.publish_jwt_control_enabled),
        ("playJwtControlEnabled", app.play_jwt_control_enabled),
    ]);
    if let Some(key) = stream_jwt_on {
        check_stream_jwt_key(&app.jwt_stream_secret_key, key, source);
    }

    if app.jwt_control_enabled && !app.jwt_secret_key.is_set() && app.jwks_url.is_none() {
        needs(source, "jwtControlEnabled", "neither jwtSecretKey nor jwksURL is set");
    }
    if app.secure_analytic_endpoint && !app.jwt_secret_key.is_set() {
        needs(source, "secureAnalyticEndpoint", "jwtSecretKey is not set");
    }

    let totp = [
        (
            "enableTimeTokenForPublish",
            app.enable_time_token_for_publish,
            &app.time_token_secret_for_publish,
            "timeTokenSecretForPublish",
            "publish",
        ),
        (
            "enableTimeTokenForPlay",
            app.enable_time_token_for_play,
            &app.time_token_secret_for_play,
            "timeTokenSecretForPlay",
            "play",
        ),
    ];
    for (key, enabled, secret, secret_key, action) in totp {
        if enabled && !secret.is_set() {
            let message = format!(
                "is true but {secret_key} is not set: only subscribers registered in the datastore can {action}"
            );
            source.warning(key, message);
        }
    }
}

fn first_enabled(flags: &[(&'static str, bool)]) -> Option<&'static str> {
    flags.iter().find(|(_, on)| *on).map(|(key, _)| *key)
}

fn needs(source: &mut FileSource<'_>, key: &str, missing: &str) {
    source.problem(key, format!("is true but {missing}"));
}

fn check_stream_jwt_key(key: &SecretSetting, enabled_by: &str, source: &mut FileSource<'_>) {
    if !key.is_set() {
        needs(source, enabled_by, "jwtStreamSecretKey is not set");
    } else if key.opened().is_some_and(|clear| clear.expose().chars().count() < MIN_STREAM_JWT_KEY_CHARS) {
        let message =
            format!("\"***\": must be at least {MIN_STREAM_JWT_KEY_CHARS} characters when {enabled_by} is true");
        source.problem("jwtStreamSecretKey", message);
    }
}

/// Two listeners that are served may not claim the same port on overlapping addresses.
fn check_ports(server: &ServerSettings, source: &mut FileSource<'_>) {
    let listeners = [
        ("rtmp.port", server.rtmp_host, server.rtmp_port, true),
        ("rtmps.port", server.rtmp_host, server.rtmps_port, server.rtmps_enabled),
        ("http.port", server.http_host, server.http_port, true),
        ("https.port", server.http_host, server.https_port, server.ssl_enabled),
    ];
    let served: Vec<(&str, IpAddr, Port)> =
        listeners.iter().filter(|l| l.3 && l.2.0 != 0).map(|l| (l.0, l.1, l.2)).collect();
    for (i, (key, host, port)) in served.iter().enumerate() {
        let clash = served[..i].iter().find(|(_, other_host, other_port)| {
            other_port == port && (host == other_host || host.is_unspecified() || other_host.is_unspecified())
        });
        if let Some((other_key, ..)) = clash {
            let blamed = if source.line_of(key).is_some() { key } else { other_key };
            let other = if blamed == key { other_key } else { key };
            source.problem(blamed, format!("\"{}\": port already taken by {other}", port.0));
        }
    }
}
