//! THE table of settings: every key, its type, default, bounds and a one-line doc.
//!
//! Each table entry also becomes a typed field, so a key is named in exactly one place. The
//! seed keys (Ant Media Server's names) keep their names, defaults and meanings; the keys rampart
//! adds use Red5's dotted style (`rtmp.port`). A doc that weakens security says so.

use super::load::FileSource;
use super::secret_setting::SecretSetting;
use super::values::{
    CidrList, HeaderText, HttpUrl, LogLevel, OriginList, Port, Seconds, SettingValue, TokenHashFormat,
};
use crate::secrets::StoreChoice;
use crate::secrets::tpm::{PcrSelection, TpmDevice};
use std::net::IpAddr;
use std::path::PathBuf;

/// One setting as the table describes it.
#[derive(Debug)]
pub struct KeyDef {
    /// The key as written in a properties file.
    pub key: &'static str,
    /// Other names accepted for the same setting.
    pub aliases: &'static [&'static str],
    /// The default, as properties text.
    pub default: &'static str,
    /// Inclusive bounds for numeric settings.
    pub range: Option<(u64, u64)>,
    /// What a valid value looks like.
    pub expected: &'static str,
    /// Whether the value is a secret (shown only as `***`).
    pub secret: bool,
    /// Whether a change takes effect only after a restart (listeners, TLS, limits, paths).
    pub restart: bool,
    /// One line saying what the setting does.
    pub doc: &'static str,
}

impl KeyDef {
    /// Whether `name` is this setting's key or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.key == name || self.aliases.contains(&name)
    }
}

/// Declares a settings struct and its table from one list of entries.
macro_rules! settings_table {
    (
        $(#[doc = $struct_doc:literal])*
        $name:ident in $table:ident {
            $(
                #[doc = $doc:literal]
                $field:ident: $ty:ty = $key:literal $(| $alias:literal)*,
                    default $default:literal $(, range $min:literal ..= $max:literal)? $([$restart:ident])?;
            )*
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        #[doc = concat!("The table behind [`", stringify!($name), "`].")]
        pub static $table: &[KeyDef] = &[
            $(KeyDef {
                key: $key,
                aliases: &[$($alias),*],
                default: $default,
                range: settings_table!(@range $($min, $max)?),
                restart: settings_table!(@restart $($restart)?),
                expected: <$ty as SettingValue>::EXPECTED,
                secret: <$ty as SettingValue>::SECRET,
                doc: $doc.trim_ascii(),
            },)*
        ];

        impl $name {
            /// Reads every field from `source`, each from its text there or its default.
            /// Problems are recorded in `source`; `None` when any field failed.
            pub(super) fn read(source: &mut FileSource<'_>) -> Option<Self> {
                let mut defs = $table.iter();
                $( let $field = defs.next().and_then(|def| source.take::<$ty>(def)); )*
                Some(Self { $( $field: $field?, )* })
            }

            /// Every setting with its value as properties text (secrets as `***`), in table order.
            pub fn rendered(&self) -> Vec<(&'static KeyDef, String)> {
                let mut defs = $table.iter();
                let mut out = Vec::with_capacity($table.len());
                $( if let Some(def) = defs.next() { out.push((def, self.$field.render())); } )*
                out
            }

            /// Every secret setting with its definition, in table order.
            pub fn secrets(&self) -> Vec<(&'static KeyDef, &SecretSetting)> {
                let mut defs = $table.iter();
                let mut out = Vec::new();
                $( if let (Some(def), Some(secret)) = (defs.next(), self.$field.as_secret()) { out.push((def, secret)); } )*
                out
            }

            /// Every secret setting with its definition, to open or seal in place.
            pub fn secrets_mut(&mut self) -> Vec<(&'static KeyDef, &mut SecretSetting)> {
                let mut defs = $table.iter();
                let mut out = Vec::new();
                $( if let (Some(def), Some(secret)) = (defs.next(), self.$field.as_secret_mut()) { out.push((def, secret)); } )*
                out
            }
        }
    };
    (@restart) => { false };
    (@restart restart) => { true };
    (@range) => { None };
    (@range $min:literal, $max:literal) => { Some(($min, $max)) };
}

settings_table! {
    /// Settings of the whole box, from `server.properties`.
    ServerSettings in SERVER_KEYS {
        /// Address the RTMP and RTMPS listeners bind (0.0.0.0: every IPv4 interface).
        rtmp_host: IpAddr = "rtmp.host", default "0.0.0.0" [restart];
        /// RTMP port (0: any free port, for tests).
        rtmp_port: Port = "rtmp.port", default "1935" [restart];
        /// RTMPS port, served when rtmpsEnabled is true.
        rtmps_port: Port = "rtmps.port", default "1936" [restart];
        /// Serve RTMPS (RTMP over TLS) on rtmps.port.
        rtmps_enabled: bool = "rtmpsEnabled" | "rtmps.enabled", default "false" [restart];
        /// Address the HTTP and HTTPS listeners (REST API, panel, WebRTC) bind.
        http_host: IpAddr = "http.host", default "0.0.0.0" [restart];
        /// HTTP port for the REST API, the panel and WHIP/WHEP.
        http_port: Port = "http.port", default "5080" [restart];
        /// HTTPS port, served when sslEnabled is true.
        https_port: Port = "https.port", default "5443" [restart];
        /// Address WebRTC media (UDP) binds; 0.0.0.0 means every interface but loopback.
        webrtc_host: IpAddr = "webrtc.host", default "0.0.0.0" [restart];
        /// Public address of a box behind 1:1 NAT, offered to WebRTC peers instead of its own (empty: none).
        webrtc_public_address: Option<IpAddr> = "webrtc.publicAddress", default "" [restart];
        /// Most WebRTC sessions (WHEP and WHIP, answering or open) one address (an IPv6 /64) may hold.
        webrtc_max_sessions_per_address: u32 = "webrtc.maxSessionsPerAddress", default "10", range 1..=100 [restart];
        /// Most WebRTC sessions one application may hold, so that an open one cannot take every session of the box.
        webrtc_max_sessions_per_app: u32 = "webrtc.maxSessionsPerApp", default "80", range 1..=100 [restart];
        /// Lowest UDP port for WebRTC media (0 with webrtc.udpPortMax 0: any free port).
        webrtc_udp_port_min: Port = "webrtc.udpPortMin", default "0" [restart];
        /// Highest UDP port for WebRTC media; one port per session is taken from the range.
        webrtc_udp_port_max: Port = "webrtc.udpPortMax", default "0" [restart];
        /// Serve HTTPS on https.port (plain HTTP then redirects the panel to it).
        ssl_enabled: bool = "sslEnabled", default "false" [restart];
        /// Most RTMP and RTMPS connections open at once; more are refused.
        rtmp_max_connections: u32 = "rtmp.maxConnections", default "500", range 1..=100000 [restart];
        /// Most HTTP and HTTPS connections open at once; more are refused.
        http_max_connections: u32 = "http.maxConnections", default "200", range 1..=100000 [restart];
        /// Most RTMP and RTMPS connections open at once from one address (an IPv6 /64 counts as one).
        rtmp_max_connections_per_address: u32 = "rtmp.maxConnectionsPerAddress", default "64", range 1..=100000 [restart];
        /// Most HTTP and HTTPS connections open at once from one address (an IPv6 /64 counts as one).
        http_max_connections_per_address: u32 = "http.maxConnectionsPerAddress", default "32", range 1..=100000 [restart];
        /// Slots of http.maxConnections only addresses in server.allowed_dashboard_CIDR may take.
        http_dashboard_reserved_connections: u32 = "http.dashboardReservedConnections", default "20", range 0..=100000 [restart];
        /// Time an RTMP connection has from accept to an admitted publish or play before it is closed.
        rtmp_admission_timeout: Seconds = "rtmp.admissionTimeout", default "10", range 1..=300 [restart];
        /// Time an HTTP client has to send a whole request head (also the keep-alive wait for the next one).
        http_request_head_timeout: Seconds = "http.requestHeadTimeout", default "5", range 1..=60 [restart];
        /// Largest RTMP chunk size a peer may announce; a larger one closes its connection.
        rtmp_max_chunk_size: u32 = "rtmp.maxChunkSize", default "65536", range 128..=16777215 [restart];
        /// Largest RTMP message a peer may send, in bytes; a larger one closes its connection.
        rtmp_max_message_size: u32 = "rtmp.maxMessageSize", default "8388608", range 65536..=16777215 [restart];
        /// Bytes a reader's queue may hold before the reader skips to the next keyframe.
        reader_queue_bytes: u32 = "media.readerQueueBytes", default "2097152", range 65536..=268435456 [restart];
        /// Bytes of the current GOP kept per stream so a new reader starts at the last keyframe.
        gop_cache_bytes: u32 = "media.gopCacheBytes", default "8388608", range 65536..=268435456 [restart];
        /// End a publish or play session when its credentials expire (JWT exp, hash expireDate) or are revoked.
        end_sessions_with_grant: bool = "server.endSessionsWhenGrantEnds", default "true" [restart];
        /// PEM certificate chain for RTMPS and HTTPS (empty: a self-signed device certificate in data.dir).
        tls_cert_file: Option<PathBuf> = "server.tlsCertFile", default "" [restart];
        /// PEM private key of server.tlsCertFile, in clear or sealed (a sealed:v1: value this box opens).
        tls_key_file: Option<PathBuf> = "server.tlsKeyFile", default "" [restart];
        /// Time a new connection has to finish its handshake before it is closed.
        handshake_timeout: Seconds = "server.handshakeTimeout", default "10", range 1..=120 [restart];
        /// Time a connection may stay silent both ways (nothing received, nothing sent) before it is closed.
        idle_timeout: Seconds = "server.idleTimeout", default "30", range 1..=3600 [restart];
        /// Directory for the datastore, audit log and device certificate (relative: to the working directory).
        data_dir: PathBuf = "data.dir", default "rampart-data" [restart];
        /// What seals the data key that opens every secret on disk: auto (tpm when secrets.tpmDevice exists or a TPM sealed the data key, else file), tpm, or file (a key file in data.dir, not hardware-protected: weak).
        secrets_store: StoreChoice = "secrets.store", default "auto" [restart];
        /// The TPM 2.0: a device path (the kernel's resource manager /dev/tpmrm0) or swtpm:HOST:PORT (swtpm's TCP command port on this box, HOST a loopback address; for tests).
        secrets_tpm_device: TpmDevice = "secrets.tpmDevice", default "/dev/tpmrm0" [restart];
        /// PCRs the data key is bound to, such as sha256:7 (empty: none); after a firmware update the secrets must be entered again.
        secrets_pcr_policy: Option<PcrSelection> = "secrets.pcrPolicy", default "" [restart];
        /// Log level: OFF, ERROR, WARN, INFO, DEBUG, TRACE or ALL.
        log_level: LogLevel = "logLevel", default "INFO";
        /// Refusals from one address (an IPv6 /64) within server.lockoutWindow that lock it out (0: never, weak).
        lockout_failures: u32 = "server.lockoutFailures", default "10", range 0..=1000;
        /// Window in which refusals are counted towards a lockout.
        lockout_window: Seconds = "server.lockoutWindow", default "60", range 1..=86400;
        /// How long a locked-out address is refused before any check runs.
        lockout_duration: Seconds = "server.lockoutDuration", default "300", range 1..=86400;
        /// Largest size of each audit file (data.dir/audit.log, admin-audit.log) before it rotates to .1.
        audit_log_max_bytes: u32 = "server.auditLogMaxBytes", default "1048576", range 4096..=268435456 [restart];
        /// Rotated copies kept of each audit file (audit.log.1 to .N, admin-audit.log.1 to .N); the oldest is deleted.
        audit_log_rotated_files: u32 = "server.auditLogRotatedFiles", default "5", range 1..=100 [restart];
        /// Longest lifetime of a token the REST API makes (one-time, JWT, hash); a later expireDate is clamped to it.
        max_token_lifetime: Seconds = "server.maxTokenLifetime", default "2592000", range 60..=315360000;
        /// PEM file of extra CA certificates trusted for https webhooks and JWKS, beside the system roots.
        tls_trust_file: Option<PathBuf> = "server.tlsTrustFile", default "" [restart];
        /// Require a server JWT for the web panel and the server REST API.
        jwt_server_control_enabled: bool = "server.jwtServerControlEnabled", default "false";
        /// HS256 key for server JWTs.
        jwt_server_secret_key: SecretSetting = "server.jwtServerSecretKey", default "";
        /// Networks allowed to reach the web panel and server REST API (the default, everyone, is weak: restrict it).
        allowed_dashboard_cidr: CidrList = "server.allowed_dashboard_CIDR", default "0.0.0.0/0";
        /// Reverse proxies whose X-Forwarded-For is believed (empty: none, the peer's address is the client's).
        trusted_proxy_cidr: CidrList = "server.trustedProxyCIDR", default "";
        /// Web origins (scheme://host:port) besides the box's own whose pages may call the panel and REST API (empty: none).
        allowed_origins: OriginList = "server.allowedOrigins", default "";
        /// URL that receives the box's status reports (empty: none).
        server_status_webhook_url: Option<HttpUrl> = "server.serverStatusWebHookURL", default "";
    }
}

settings_table! {
    /// Settings of one application, from `apps/<App>.properties`.
    AppSettings in APP_KEYS {
        /// Require a hash token to publish.
        hash_control_publish_enabled: bool = "hashControlPublishEnabled", default "false";
        /// Require a hash token to play.
        hash_control_play_enabled: bool = "hashControlPlayEnabled", default "false";
        /// HMAC-SHA256 key of hash tokens: hash = base64(hmac_sha256(streamId + role + expireDate, key)).
        token_hash_secret: SecretSetting = "tokenHashSecret", default "";
        /// Hash token form: hmac-sha256 (with expireDate) or ams-sha256 (AMS legacy hex(sha256(streamId + role + secret)): no expiry, weak).
        token_hash_format: TokenHashFormat = "tokenHashFormat", default "hmac-sha256";
        /// Require a one-time token (made through the REST API) to publish.
        publish_token_control_enabled: bool = "publishTokenControlEnabled", default "false";
        /// Require a one-time token (made through the REST API) to play.
        play_token_control_enabled: bool = "playTokenControlEnabled", default "false";
        /// Require a TOTP code (subscriberId + subscriberCode) to publish.
        enable_time_token_for_publish: bool = "enableTimeTokenForPublish", default "false";
        /// TOTP key for publishers not in the datastore (unset: only registered subscribers can publish).
        time_token_secret_for_publish: SecretSetting = "timeTokenSecretForPublish", default "";
        /// Require a TOTP code (subscriberId + subscriberCode) to play.
        enable_time_token_for_play: bool = "enableTimeTokenForPlay", default "false";
        /// TOTP key for players not in the datastore (unset: only registered subscribers can play).
        time_token_secret_for_play: SecretSetting = "timeTokenSecretForPlay", default "";
        /// TOTP time step in seconds.
        time_token_period: u32 = "timeTokenPeriod", default "60", range 10..=600;
        /// Require a JWT for the application's REST API.
        jwt_control_enabled: bool = "jwtControlEnabled", default "false";
        /// HS256 key for application REST API JWTs.
        jwt_secret_key: SecretSetting = "jwtSecretKey", default "";
        /// JWKS URL whose RS256/ES256 keys check REST API JWTs instead of jwtSecretKey.
        jwks_url: Option<HttpUrl> = "jwksURL", default "";
        /// Require a stream JWT to publish.
        publish_jwt_control_enabled: bool = "publishJwtControlEnabled", default "false";
        /// Require a stream JWT to play.
        play_jwt_control_enabled: bool = "playJwtControlEnabled", default "false";
        /// HS256 key of stream JWTs, at least 32 characters.
        jwt_stream_secret_key: SecretSetting = "jwtStreamSecretKey", default "";
        /// Check REST API callers against remoteAllowedCIDR (false lets any address call the API: weak).
        ip_filter_enabled: bool = "ipFilterEnabled", default "true";
        /// Networks allowed to call the application's REST API.
        remote_allowed_cidr: CidrList = "remoteAllowedCIDR", default "127.0.0.1";
        /// Networks allowed to publish (empty: anywhere).
        allowed_publisher_cidr: CidrList = "allowedPublisherCIDR", default "";
        /// URL asked to allow each publish: HTTP 200 allows, anything else refuses (empty: not asked).
        webhook_authenticate_url: Option<HttpUrl> = "webhookAuthenticateURL", default "";
        /// URL asked to allow each play: HTTP 200 allows, anything else refuses (empty: not asked).
        webhook_play_auth_url: Option<HttpUrl> = "webhookPlayAuthUrl", default "";
        /// Key of subscriber JWTs (empty: a random 32-character key made at first start).
        subscriber_authentication_key: SecretSetting = "subscriberAuthenticationKey", default "";
        /// Require a JWT (checked with jwtSecretKey) for analytics events.
        secure_analytic_endpoint: bool = "secureAnalyticEndpoint", default "false";
        /// Accept a publish only for a streamId registered in the datastore.
        accept_only_streams_in_data_store: bool = "acceptOnlyStreamsInDataStore", default "false";
        /// Accept a conference room only when registered in the datastore.
        accept_only_rooms_in_data_store: bool = "acceptOnlyRoomsInDataStore", default "false";
        /// Content-Security-Policy header sent with HTTP responses (empty: the panel's strict default).
        content_security_policy_header_value: HeaderText = "contentSecurityPolicyHeaderValue", default "";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_across_both_tables() {
        let mut names: Vec<&str> = SERVER_KEYS
            .iter()
            .chain(APP_KEYS)
            .flat_map(|d| std::iter::once(d.key).chain(d.aliases.iter().copied()))
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a key appears twice");
    }

    #[test]
    fn every_seed_key_is_in_the_table() {
        let seed = [
            "hashControlPublishEnabled",
            "hashControlPlayEnabled",
            "tokenHashSecret",
            "publishTokenControlEnabled",
            "playTokenControlEnabled",
            "enableTimeTokenForPublish",
            "timeTokenSecretForPublish",
            "enableTimeTokenForPlay",
            "timeTokenSecretForPlay",
            "timeTokenPeriod",
            "jwtControlEnabled",
            "jwtSecretKey",
            "jwksURL",
            "publishJwtControlEnabled",
            "playJwtControlEnabled",
            "jwtStreamSecretKey",
            "ipFilterEnabled",
            "remoteAllowedCIDR",
            "allowedPublisherCIDR",
            "webhookAuthenticateURL",
            "webhookPlayAuthUrl",
            "subscriberAuthenticationKey",
            "secureAnalyticEndpoint",
            "acceptOnlyStreamsInDataStore",
            "acceptOnlyRoomsInDataStore",
            "rtmpsEnabled",
            "contentSecurityPolicyHeaderValue",
            "logLevel",
            "server.jwtServerControlEnabled",
            "server.jwtServerSecretKey",
            "server.allowed_dashboard_CIDR",
            "server.serverStatusWebHookURL",
            "sslEnabled",
            "rtmps.enabled",
        ];
        for key in seed {
            assert!(SERVER_KEYS.iter().chain(APP_KEYS).any(|d| d.answers_to(key)), "{key} missing");
        }
    }

    #[test]
    fn seed_defaults_are_kept() {
        let default_of = |key: &str| SERVER_KEYS.iter().chain(APP_KEYS).find(|d| d.key == key).map(|d| d.default);
        assert_eq!(default_of("timeTokenPeriod"), Some("60"));
        assert_eq!(default_of("ipFilterEnabled"), Some("true"));
        assert_eq!(default_of("remoteAllowedCIDR"), Some("127.0.0.1"));
        assert_eq!(default_of("allowedPublisherCIDR"), Some(""));
        assert_eq!(default_of("server.allowed_dashboard_CIDR"), Some("0.0.0.0/0"));
        assert_eq!(default_of("hashControlPublishEnabled"), Some("false"));
    }

    #[test]
    fn every_doc_is_one_line() {
        for def in SERVER_KEYS.iter().chain(APP_KEYS) {
            assert!(!def.doc.is_empty() && !def.doc.contains('\n'), "{}", def.key);
        }
    }
}
