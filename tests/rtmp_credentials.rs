//! Publish and play over RTMP with each credential mechanism: what the pipeline allows delivers
//! frames to ffmpeg readers; what it refuses fails and leaves its reason in the audit trail.

mod common;

use common::block_on;
use common::daemon::{InProcess, Reader, publish};
use common::security::{STREAM_KEY, stream_jwt};
use rampart::clock::{Clock, SystemClock};
use rampart::config::values::TokenHashFormat;
use rampart::secrets::Secret;
use rampart::security::Action::{self, Play, Publish};
use rampart::security::hash_token::HashTokens;
use rampart::security::store::OneTimeToken;
use rampart::security::totp;

fn in_an_hour() -> u64 {
    SystemClock.unix_secs() + 3600
}

fn refused_reader(daemon: &InProcess, path: &str, stream: &str, reason: &str) {
    let mut reader = Reader::start(&daemon.url(path), 2, &[]);
    assert!(!reader.client.wait(), "{path} must be refused");
    assert_eq!(reader.frames(), 0);
    daemon.wait_audit(stream, reason);
}

#[test]
fn one_time_tokens() {
    let daemon = InProcess::start("", "publishTokenControlEnabled=true\nplayTokenControlEnabled=true");
    let store = &daemon.services.stores["LiveApp"];
    let token = |id: &str, kind: Action| {
        let token = OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: "s1".into(),
            kind,
            expire_date: in_an_hour(),
            room_id: None,
        };
        block_on(store.add_token(token, SystemClock.unix_secs())).unwrap();
    };
    token("pub-1", Publish);
    token("play-1", Play);
    let mut refused = publish(&daemon.url("s1?token=wrong"), 5);
    assert!(!refused.wait());
    daemon.wait_audit("s1", "one-time token unknown or already used");

    let _publisher = publish(&daemon.url("s1?token=pub-1"), 30);
    daemon.wait_live("s1", 0);
    Reader::start(&daemon.url("s1?token=play-1"), 2, &[]).wait_frames(30);
    refused_reader(&daemon, "s1?token=play-1", "s1", "one-time token unknown or already used");
}

#[test]
fn hash_tokens() {
    let daemon = InProcess::start(
        "",
        "hashControlPublishEnabled=true\nhashControlPlayEnabled=true\ntokenHashSecret=hash-secret",
    );
    let hashes = HashTokens::new(&Secret::new("hash-secret".into()), TokenHashFormat::HmacSha256);
    let exp = in_an_hour();
    let query = |action| {
        format!(
            "hash={}&expireDate={exp}",
            hashes.make("s1", action, exp).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
        )
    };
    let _publisher = publish(&daemon.url(&format!("s1?{}", query(Publish))), 30);
    daemon.wait_live("s1", 0);
    Reader::start(&daemon.url(&format!("s1?{}", query(Play))), 2, &[]).wait_frames(30);
    refused_reader(&daemon, &format!("s1?{}", query(Publish)), "s1", "hash token does not match");
}

#[test]
fn totp_codes() {
    let daemon =
        InProcess::start("", "enableTimeTokenForPlay=true\ntimeTokenSecretForPlay=totp-secret\ntimeTokenPeriod=60");
    let _publisher = publish(&daemon.url("s1"), 30);
    daemon.wait_live("s1", 0);
    let key = totp::derived_key(&totp::app_key(b"totp-secret"), "viewer1", "s1", Play);
    let code = totp::code_at(&key, SystemClock.unix_secs(), 60);
    Reader::start(&daemon.url(&format!("s1?subscriberId=viewer1&subscriberCode={code}")), 2, &[]).wait_frames(30);
    refused_reader(&daemon, &format!("s1?subscriberId=viewer2&subscriberCode={code}"), "s1", "TOTP code wrong");
}

#[test]
fn stream_jwts_from_the_stream_name_or_the_application() {
    let daemon = InProcess::start(
        "",
        &format!("publishJwtControlEnabled=true\nplayJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"),
    );
    let exp = in_an_hour();
    let _publisher = publish(&daemon.url(&format!("s1?jwt={}", stream_jwt("s1", Publish, exp))), 30);
    daemon.wait_live("s1", 0);
    Reader::start(&daemon.url(&format!("s1?jwt={}", stream_jwt("s1", Play, exp))), 2, &[]).wait_frames(30);

    // As OBS sends it: the credentials on the application ("server") part of the URL.
    let app = format!("LiveApp?jwt={}", stream_jwt("s1", Play, exp));
    let url = format!("rtmp://{}", daemon.addr("RTMP"));
    Reader::start(&url, 2, &["-rtmp_app", &app, "-rtmp_playpath", "s1"]).wait_frames(30);

    refused_reader(&daemon, &format!("s1?jwt={}", stream_jwt("s2", Play, exp)), "s1", "JWT is for another stream");
}

#[test]
fn publisher_cidr() {
    let daemon = InProcess::start("", "allowedPublisherCIDR=10.0.0.0/8");
    let mut publisher = publish(&daemon.url("s1"), 5);
    assert!(!publisher.wait());
    daemon.wait_audit("s1", "address not in allowedPublisherCIDR");
    assert!(daemon.services.hub.live_streams().is_empty());
}
