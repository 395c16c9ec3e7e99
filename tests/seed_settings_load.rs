//! A configuration that sets every seed key to a value other than its default loads to exactly
//! those values, and the defaults printed by `print-defaults` load back to the defaults.

mod common;

use common::ConfigDir;
use rampart::cli::{Defaults, defaults_text};
use rampart::config::SecretSetting;
use rampart::config::values::{CidrList, HeaderText, HttpUrl, LogLevel, SettingValue};
use rampart::config::{self, DEFAULT_APP};

const SERVER: &str = r"# Ant Media Server style server settings
server.jwtServerControlEnabled=true
server.jwtServerSecretKey=server-secret-0123456789abcdef0123
server.allowed_dashboard_CIDR=192.168.1.0/24,10.0.0.100/32
server.serverStatusWebHookURL=https://api.example.com/server-status
sslEnabled=true
rtmps.enabled=true
logLevel=WARN
";

const APP: &str = r"hashControlPublishEnabled = true
hashControlPlayEnabled : true
tokenHashSecret=hash-secret
publishTokenControlEnabled=true
playTokenControlEnabled=true
enableTimeTokenForPublish=true
timeTokenSecretForPublish=totp-publish-secret
enableTimeTokenForPlay=true
timeTokenSecretForPlay=totp-play-secret
timeTokenPeriod=30
jwtControlEnabled=true
jwtSecretKey=app-jwt-secret
jwksURL=https://idp.example.com/.well-known/jwks.json
publishJwtControlEnabled=true
playJwtControlEnabled=true
jwtStreamSecretKey=stream-secret-0123456789abcdef0123
ipFilterEnabled=false
remoteAllowedCIDR=10.0.0.0/8
allowedPublisherCIDR=203.0.113.0/24,198.51.100.0/24
webhookAuthenticateURL=https://api.example.com/auth
webhookPlayAuthUrl=http://api.example.com:8080/auth-play
subscriberAuthenticationKey=subscriber-key-0123456789abcdef
secureAnalyticEndpoint=true
acceptOnlyStreamsInDataStore=true
acceptOnlyRoomsInDataStore=true
contentSecurityPolicyHeaderValue=default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'
";

fn secret(text: &str) -> SecretSetting {
    SecretSetting::clear(text)
}

fn url(text: &str) -> Option<HttpUrl> {
    Some(HttpUrl(text.parse().unwrap()))
}

fn cidrs(text: &str) -> CidrList {
    CidrList::parse(text).unwrap()
}

#[test]
fn every_seed_key_loads_to_its_non_default_value() {
    let dir = ConfigDir::new().server(SERVER).app("LiveApp", APP);
    let loaded = config::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let server = &loaded.settings.server;
    assert!(server.jwt_server_control_enabled);
    assert_eq!(server.jwt_server_secret_key, secret("server-secret-0123456789abcdef0123"));
    assert_eq!(server.allowed_dashboard_cidr, cidrs("192.168.1.0/24,10.0.0.100"));
    assert_eq!(server.server_status_webhook_url, url("https://api.example.com/server-status"));
    assert!(server.ssl_enabled);
    assert!(server.rtmps_enabled);
    assert_eq!(server.log_level, LogLevel(log::LevelFilter::Warn));

    let app = &loaded.settings.apps["LiveApp"];
    assert!(app.hash_control_publish_enabled && app.hash_control_play_enabled);
    assert_eq!(app.token_hash_secret, secret("hash-secret"));
    assert!(app.publish_token_control_enabled && app.play_token_control_enabled);
    assert!(app.enable_time_token_for_publish && app.enable_time_token_for_play);
    assert_eq!(app.time_token_secret_for_publish, secret("totp-publish-secret"));
    assert_eq!(app.time_token_secret_for_play, secret("totp-play-secret"));
    assert_eq!(app.time_token_period, 30);
    assert!(app.jwt_control_enabled);
    assert_eq!(app.jwt_secret_key, secret("app-jwt-secret"));
    assert_eq!(app.jwks_url, url("https://idp.example.com/.well-known/jwks.json"));
    assert!(app.publish_jwt_control_enabled && app.play_jwt_control_enabled);
    assert_eq!(app.jwt_stream_secret_key, secret("stream-secret-0123456789abcdef0123"));
    assert!(!app.ip_filter_enabled);
    assert_eq!(app.remote_allowed_cidr, cidrs("10.0.0.0/8"));
    assert_eq!(app.allowed_publisher_cidr, cidrs("203.0.113.0/24,198.51.100.0/24"));
    assert_eq!(app.webhook_authenticate_url, url("https://api.example.com/auth"));
    assert_eq!(app.webhook_play_auth_url, url("http://api.example.com:8080/auth-play"));
    assert_eq!(app.subscriber_authentication_key, secret("subscriber-key-0123456789abcdef"));
    assert!(app.secure_analytic_endpoint);
    assert!(app.accept_only_streams_in_data_store && app.accept_only_rooms_in_data_store);
    assert_eq!(
        app.content_security_policy_header_value,
        HeaderText("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'".into())
    );
}

#[test]
fn several_apps_load_side_by_side() {
    let dir = ConfigDir::new().app("LiveApp", "").app("Cameras", "allowedPublisherCIDR=10.9.0.0/16");
    let apps = config::load(Some(dir.path())).unwrap().settings.apps;
    assert_eq!(apps.keys().collect::<Vec<_>>(), ["Cameras", "LiveApp"]);
    assert_eq!(apps["Cameras"].allowed_publisher_cidr, cidrs("10.9.0.0/16"));
    assert_eq!(apps["LiveApp"].allowed_publisher_cidr, CidrList::default());
}

#[test]
fn printed_defaults_load_back_to_exactly_the_defaults() {
    let dir = ConfigDir::new().server(&defaults_text(Defaults::Server)).app(DEFAULT_APP, &defaults_text(Defaults::App));
    let loaded = config::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let embedded = config::load(None).unwrap().settings;
    assert_eq!(loaded.settings, embedded);
    assert_eq!(embedded.apps.keys().collect::<Vec<_>>(), [DEFAULT_APP]);
}

#[test]
fn an_empty_config_dir_serves_the_default_app() {
    let dir = ConfigDir::new();
    assert_eq!(config::load(Some(dir.path())).unwrap().settings, config::load(None).unwrap().settings);
}
