//! Every check of the security pipeline against valid, expired, wrong role, wrong stream,
//! tampered, missing, malformed and replayed credentials, lockout, and the combination the
//! seed's "maximum security" example enables.

mod common;

use common::block_on;
use common::security::{Fixture, STREAM_KEY, T0, jwt, stream_jwt};
use rampart::secrets::Secret;
use rampart::security::Action::{Play, Publish};
use rampart::security::store::{Subscriber, SubscriberKey, SubscriberKind};
use rampart::security::{Decision, Reason};
use rampart::store::Broadcast;
use std::time::Duration;

const HOUR: u64 = 3600;

fn denied(reason: Reason) -> Result<Vec<&'static str>, Reason> {
    Err(reason)
}

fn outcome(decision: Decision) -> Result<Vec<&'static str>, Reason> {
    match decision {
        Decision::Allow(grant) => Ok(grant.admitted_by),
        Decision::Deny(reason) => Err(reason),
    }
}

#[test]
fn nothing_enabled_means_open() {
    let f = Fixture::new("", "");
    assert_eq!(outcome(f.decide_query(Publish, "s1", "")), Ok(vec![]));
    assert_eq!(outcome(f.decide_query(Play, "s1", "token=whatever")), Ok(vec![]));
    assert_eq!(outcome(f.decide(f.request(Publish, "s1", "", "2001:db8::1"))), Ok(vec![]));
}

#[test]
fn unknown_application_is_refused() {
    let f = Fixture::new("", "");
    let mut request = f.request(Play, "s1", "", "10.0.0.1");
    request.app = "Other".into();
    assert_eq!(outcome(f.decide(request)), denied(Reason::UnknownApp));
}

#[test]
fn hash_tokens() {
    let f =
        Fixture::new("hashControlPublishEnabled=true\nhashControlPlayEnabled=true\ntokenHashSecret=hash-secret", "");
    let exp = T0 + HOUR;
    let valid = format!("hash={}&expireDate={exp}", f.hash("s1", Publish, exp));
    let cases = [
        ("valid", Publish, "s1", valid.clone(), Ok(vec!["hash token"])),
        (
            "as token",
            Publish,
            "s1",
            format!("token={}&expireDate={exp}", f.hash("s1", Publish, exp)),
            Ok(vec!["hash token"]),
        ),
        (
            "expired",
            Publish,
            "s1",
            format!("hash={}&expireDate={}", f.hash("s1", Publish, T0 - 1), T0 - 1),
            denied(Reason::HashExpired),
        ),
        ("wrong role", Play, "s1", valid.clone(), denied(Reason::HashMismatch)),
        ("wrong stream", Publish, "s2", valid.clone(), denied(Reason::HashMismatch)),
        (
            "tampered expiry",
            Publish,
            "s1",
            format!("hash={}&expireDate={}", f.hash("s1", Publish, exp), exp + 1),
            denied(Reason::HashMismatch),
        ),
        ("missing", Publish, "s1", String::new(), denied(Reason::HashMissing)),
        (
            "no expireDate",
            Publish,
            "s1",
            format!("hash={}", f.hash("s1", Publish, exp)),
            denied(Reason::HashExpireDateMissing),
        ),
        ("malformed", Publish, "s1", format!("hash=%%%%&expireDate={exp}"), denied(Reason::HashMalformed)),
        (
            "malformed expiry",
            Publish,
            "s1",
            format!("hash={}&expireDate=tomorrow", f.hash("s1", Publish, exp)),
            denied(Reason::HashExpireDateMalformed),
        ),
    ];
    for (name, action, stream, query, expected) in cases {
        assert_eq!(outcome(f.decide_query(action, stream, &query)), expected, "{name}");
    }
    let Decision::Allow(grant) = f.decide_query(Publish, "s1", &valid) else { panic!("refused") };
    assert_eq!(grant.expires_at, Some(exp), "the grant ends with the hash");
}

#[test]
fn ams_legacy_hash_tokens() {
    let f = Fixture::new("hashControlPlayEnabled=true\ntokenHashSecret=hash-secret\ntokenHashFormat=ams-sha256", "");
    let hash = f.hash("s1", Play, 0);
    assert_eq!(outcome(f.decide_query(Play, "s1", &format!("hash={hash}"))), Ok(vec!["hash token"]));
    assert_eq!(outcome(f.decide_query(Play, "s2", &format!("hash={hash}"))), denied(Reason::HashMismatch));
}

#[test]
fn one_time_tokens() {
    let f = Fixture::new("publishTokenControlEnabled=true\nplayTokenControlEnabled=true", "");
    let exp = T0 + HOUR;
    let cases = [
        ("valid", Publish, "s1", f.one_time("t-valid", "s1", Publish, exp), Ok(vec!["one-time token"])),
        ("replayed", Publish, "s1", "t-valid".to_string(), denied(Reason::OneTimeTokenUnknown)),
        ("expired", Publish, "s1", f.one_time("t-old", "s1", Publish, T0), denied(Reason::OneTimeTokenExpired)),
        ("wrong role", Play, "s1", f.one_time("t-pub", "s1", Publish, exp), denied(Reason::OneTimeTokenWrongType)),
        (
            "wrong stream",
            Publish,
            "s2",
            f.one_time("t-s1", "s1", Publish, exp),
            denied(Reason::OneTimeTokenWrongStream),
        ),
        ("tampered", Publish, "s1", "t-s1x".to_string(), denied(Reason::OneTimeTokenUnknown)),
        ("missing", Publish, "s1", String::new(), denied(Reason::OneTimeTokenMissing)),
        ("malformed", Publish, "s1", "%00%ff\u{1}".to_string(), denied(Reason::OneTimeTokenUnknown)),
    ];
    for (name, action, stream, token, expected) in cases {
        assert_eq!(outcome(f.decide_query(action, stream, &format!("token={token}"))), expected, "{name}");
    }
    // A refused attempt does not burn the token: t-pub and t-s1 still work for what they are for.
    assert_eq!(outcome(f.decide_query(Publish, "s1", "token=t-pub")), Ok(vec!["one-time token"]));
    assert_eq!(outcome(f.decide_query(Publish, "s1", "token=t-s1")), Ok(vec!["one-time token"]));
}

#[test]
fn one_time_token_bound_to_a_room() {
    let f = Fixture::new("playTokenControlEnabled=true", "");
    let token = rampart::security::store::OneTimeToken {
        token_id: Secret::new("t-room".into()),
        stream_id: "s1".into(),
        kind: Play,
        expire_date: T0 + HOUR,
        room_id: Some("room1".into()),
    };
    block_on(f.store.add_token(token, T0)).unwrap();
    let mut request = f.request(Play, "s1", "token=t-room", "10.0.0.1");
    request.room_id = Some("room2".into());
    assert_eq!(outcome(f.decide(request.clone())), denied(Reason::OneTimeTokenWrongRoom));
    request.room_id = Some("room1".into());
    assert_eq!(outcome(f.decide(request)), Ok(vec!["one-time token"]));
}

#[test]
fn totp_for_unregistered_subscribers() {
    let f = Fixture::new(
        "enableTimeTokenForPublish=true\ntimeTokenSecretForPublish=publish-secret\nenableTimeTokenForPlay=true\ntimeTokenSecretForPlay=play-secret\ntimeTokenPeriod=30",
        "",
    );
    let code = f.totp_code("cam1", "s1", Publish);
    let query = |sub: &str, code: &str| format!("subscriberId={sub}&subscriberCode={code}");
    assert_eq!(outcome(f.decide_query(Publish, "s1", &query("cam1", &code))), Ok(vec!["TOTP"]), "valid");
    assert_eq!(outcome(f.decide_query(Publish, "s1", &query("cam1", &code))), denied(Reason::TotpReplayed), "replayed");
    let other = f.totp_code("cam2", "s1", Publish);
    assert_eq!(
        outcome(f.decide_query(Publish, "s1", &query("cam3", &other))),
        denied(Reason::TotpWrong),
        "another subscriber's code"
    );
    assert_eq!(
        outcome(f.decide_query(Publish, "s2", &query("cam2", &other))),
        denied(Reason::TotpWrong),
        "wrong stream"
    );
    assert_eq!(outcome(f.decide_query(Play, "s1", &query("cam2", &other))), denied(Reason::TotpWrong), "wrong role");
    let tampered = format!("{:06}", (other.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert_eq!(
        outcome(f.decide_query(Publish, "s1", &query("cam2", &tampered))),
        denied(Reason::TotpWrong),
        "tampered"
    );
    assert_eq!(outcome(f.decide_query(Publish, "s1", "subscriberId=cam2")), denied(Reason::TotpMissing), "missing");
    assert_eq!(
        outcome(f.decide_query(Publish, "s1", &query("cam2", "12ab56"))),
        denied(Reason::TotpWrong),
        "malformed"
    );
    f.clock.advance(Duration::from_secs(30));
    assert_eq!(outcome(f.decide_query(Publish, "s1", &query("cam2", &other))), Ok(vec!["TOTP"]), "previous step");
    let stale = f.totp_code("cam4", "s1", Publish);
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(outcome(f.decide_query(Publish, "s1", &query("cam4", &stale))), denied(Reason::TotpWrong), "expired");
}

#[test]
fn totp_for_registered_subscribers() {
    let f = Fixture::new("enableTimeTokenForPlay=true", "");
    let key = b"registered-subscriber-key".to_vec();
    let subscriber = |id: &str, kind, blocked_play_until| Subscriber {
        subscriber_id: id.into(),
        stream_id: "s1".into(),
        secret: SubscriberKey::Open(Secret::new(key.clone())),
        kind,
        period: Some(30),
        blocked_publish_until: 0,
        blocked_play_until,
    };
    block_on(f.store.put_subscriber(subscriber("viewer", SubscriberKind::Play, 0))).unwrap();
    block_on(f.store.put_subscriber(subscriber("sender", SubscriberKind::Publish, 0))).unwrap();
    block_on(f.store.put_subscriber(subscriber("banned", SubscriberKind::PublishPlay, T0 + 60))).unwrap();
    let code = rampart::security::totp::code_at(&key, T0, 30);
    let query = |sub: &str| format!("subscriberId={sub}&subscriberCode={code}");
    assert_eq!(outcome(f.decide_query(Play, "s1", &query("viewer"))), Ok(vec!["TOTP"]));
    assert_eq!(outcome(f.decide_query(Play, "s1", &query("sender"))), denied(Reason::SubscriberWrongType));
    assert_eq!(outcome(f.decide_query(Play, "s1", &query("banned"))), denied(Reason::SubscriberBlocked));
    assert_eq!(
        outcome(f.decide_query(Play, "s1", &query("stranger"))),
        denied(Reason::SubscriberUnknown),
        "no app secret"
    );
    let next_step = rampart::security::totp::code_at(&key, T0 + 30, 30);
    let early = format!("subscriberId=viewer&subscriberCode={next_step}");
    assert_eq!(outcome(f.decide_query(Play, "s1", &early)), denied(Reason::TotpWrong), "a code before its time");
}

#[test]
fn stream_jwts() {
    let f = Fixture::new(
        &format!("publishJwtControlEnabled=true\nplayJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"),
        "",
    );
    let exp = T0 + HOUR;
    let valid = stream_jwt("s1", Publish, exp);
    let none_alg = {
        let parts: Vec<&str> = valid.split('.').collect();
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1])
    };
    let cases = [
        ("valid", Publish, "s1", format!("jwt={valid}"), Ok(vec!["stream JWT"])),
        ("as token", Publish, "s1", format!("token={valid}"), Ok(vec!["stream JWT"])),
        ("expired", Publish, "s1", format!("jwt={}", stream_jwt("s1", Publish, T0)), denied(Reason::JwtExpired)),
        ("wrong role", Play, "s1", format!("jwt={valid}"), denied(Reason::JwtWrongType)),
        ("wrong stream", Publish, "s2", format!("jwt={valid}"), denied(Reason::JwtWrongStream)),
        (
            "tampered",
            Publish,
            "s1",
            format!(
                "jwt={}",
                jwt(
                    "another-key-0123456789abcdef012345",
                    serde_json::json!({"streamId": "s1", "type": "publish", "exp": exp})
                ),
            ),
            denied(Reason::JwtBadSignature),
        ),
        ("missing", Publish, "s1", String::new(), denied(Reason::JwtMissing)),
        ("malformed", Publish, "s1", "jwt=abc.def".to_string(), denied(Reason::JwtMalformed)),
        ("alg none", Publish, "s1", format!("jwt={none_alg}"), denied(Reason::JwtAlgorithmRefused)),
        (
            "no exp",
            Publish,
            "s1",
            format!("jwt={}", jwt(STREAM_KEY, serde_json::json!({"streamId": "s1", "type": "publish"}))),
            denied(Reason::JwtExpMissing),
        ),
        (
            "not yet",
            Publish,
            "s1",
            format!(
                "jwt={}",
                jwt(STREAM_KEY, serde_json::json!({"streamId": "s1", "type": "publish", "exp": exp, "nbf": T0 + 60}))
            ),
            denied(Reason::JwtNotYetValid),
        ),
    ];
    for (name, action, stream, query, expected) in cases {
        assert_eq!(outcome(f.decide_query(action, stream, &query)), expected, "{name}");
    }
}

#[test]
fn publisher_cidr_and_registered_streams() {
    let f = Fixture::new(
        "allowedPublisherCIDR=203.0.113.0/24\nacceptOnlyStreamsInDataStore=true\nacceptOnlyRoomsInDataStore=true",
        "",
    );
    block_on(f.store.add_broadcast(Broadcast::new("registered", 0))).unwrap();
    block_on(f.store.add_room("room1")).unwrap();
    let from = |peer: &str, stream: &str| outcome(f.decide(f.request(Publish, stream, "", peer)));
    assert_eq!(from("203.0.113.7", "registered"), Ok(vec![]));
    assert_eq!(from("::ffff:203.0.113.7", "registered"), Ok(vec![]));
    assert_eq!(from("198.51.100.7", "registered"), denied(Reason::PeerNotAllowed));
    assert_eq!(from("203.0.113.7", "unregistered"), denied(Reason::StreamNotRegistered));
    // Players are not subject to the publisher CIDR nor to stream registration.
    assert_eq!(outcome(f.decide(f.request(Play, "unregistered", "", "198.51.100.7"))), Ok(vec![]));
    let mut in_room = f.request(Play, "s1", "", "198.51.100.7");
    in_room.room_id = Some("room2".into());
    assert_eq!(outcome(f.decide(in_room.clone())), denied(Reason::RoomNotRegistered));
    in_room.room_id = Some("room1".into());
    assert_eq!(outcome(f.decide(in_room)), Ok(vec![]));
}

#[test]
fn lockout_refuses_before_any_check() {
    let f = Fixture::new(
        "playTokenControlEnabled=true",
        "server.lockoutFailures=3\nserver.lockoutWindow=60\nserver.lockoutDuration=300",
    );
    let good = f.one_time("t-good", "s1", Play, T0 + HOUR);
    for _ in 0..3 {
        assert_eq!(outcome(f.decide_query(Play, "s1", "token=wrong")), denied(Reason::OneTimeTokenUnknown));
    }
    assert_eq!(outcome(f.decide_query(Play, "s1", &format!("token={good}"))), denied(Reason::LockedOut));
    assert_eq!(
        outcome(f.decide(f.request(Play, "s1", &format!("token={good}"), "10.0.0.2"))),
        Ok(vec!["one-time token"]),
        "another address"
    );
    let good = f.one_time("t-good2", "s1", Play, T0 + HOUR);
    f.clock.advance(Duration::from_secs(299));
    assert_eq!(outcome(f.decide_query(Play, "s1", &format!("token={good}"))), denied(Reason::LockedOut));
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(outcome(f.decide_query(Play, "s1", &format!("token={good}"))), Ok(vec!["one-time token"]), "lock over");
}

/// The seed's "maximum security" example (its local checks; webhooks have their own test).
const MAXIMUM_SECURITY: &str = "publishTokenControlEnabled=true
playTokenControlEnabled=true
publishJwtControlEnabled=true
playJwtControlEnabled=true
jwtStreamSecretKey=stream-secret-0123456789abcdef0123
ipFilterEnabled=true
remoteAllowedCIDR=10.0.0.0/8
allowedPublisherCIDR=203.0.113.0/24
acceptOnlyStreamsInDataStore=true
acceptOnlyRoomsInDataStore=true
";

#[test]
fn maximum_security_combination() {
    let f = Fixture::new(MAXIMUM_SECURITY, "");
    block_on(f.store.add_broadcast(Broadcast::new("cam", 0))).unwrap();
    let exp = T0 + HOUR;
    let jwt_pub = stream_jwt("cam", Publish, exp);
    let publish = |peer: &str, query: String| outcome(f.decide(f.request(Publish, "cam", &query, peer)));

    let token = f.one_time("p1", "cam", Publish, exp);
    assert_eq!(
        publish("203.0.113.5", format!("token={token}&jwt={jwt_pub}")),
        Ok(vec!["one-time token", "stream JWT"])
    );
    let token = f.one_time("p2", "cam", Publish, exp);
    assert_eq!(publish("198.51.100.5", format!("token={token}&jwt={jwt_pub}")), denied(Reason::PeerNotAllowed));
    assert_eq!(
        publish("203.0.113.5", format!("token={token}")),
        denied(Reason::JwtMissing),
        "with one-time tokens on, token is not a JWT"
    );
    assert_eq!(publish("203.0.113.5", format!("jwt={jwt_pub}")), denied(Reason::OneTimeTokenMissing));
    assert_eq!(
        publish("203.0.113.5", format!("token={token}&jwt={}", stream_jwt("cam", Play, exp))),
        denied(Reason::JwtWrongType)
    );
    assert_eq!(
        publish("203.0.113.5", format!("token={token}&jwt={jwt_pub}")),
        Ok(vec!["one-time token", "stream JWT"]),
        "refusals did not burn p2"
    );
    let unregistered = f.one_time("p3", "other", Publish, exp);
    let other_jwt = stream_jwt("other", Publish, exp);
    assert_eq!(
        outcome(f.decide(f.request(Publish, "other", &format!("token={unregistered}&jwt={other_jwt}"), "203.0.113.5"))),
        denied(Reason::StreamNotRegistered)
    );

    let play_token = f.one_time("v1", "cam", Play, exp);
    let jwt_play = stream_jwt("cam", Play, exp);
    let Decision::Allow(grant) =
        f.decide(f.request(Play, "cam", &format!("token={play_token}&jwt={jwt_play}"), "198.51.100.9"))
    else {
        panic!("player refused")
    };
    assert_eq!(grant.expires_at, Some(exp));
    assert_eq!(grant.one_time_token.as_ref().map(|t| t.expose().as_str()), Some("v1"));
}

#[test]
fn every_decision_is_audited_with_its_reason() {
    let f = Fixture::new("playTokenControlEnabled=true", "");
    let token = f.one_time("t1", "s1", Play, T0 + HOUR);
    f.decide_query(Play, "s1", "token=nope");
    f.decide_query(Play, "s1", &format!("token={token}"));
    let events = f.pipeline.audit().recent();
    let summary: Vec<(bool, &str, &str)> =
        events.iter().map(|e| (e.allowed, e.stream.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        summary,
        vec![(false, "s1", "one-time token unknown or already used"), (true, "s1", "admitted by one-time token")]
    );
    assert_eq!(events[0].peer_ip.to_string(), "10.0.0.1");
    assert_eq!((events[0].action, events[0].protocol, events[0].app.as_str()), ("play", "rtmp", "LiveApp"));
}
