//! A session admitted by a credential that expires or is revoked is closed within a second and
//! audited: a stream JWT that expires during playback, and deleting a stream's one-time tokens.

mod common;

use common::block_on;
use common::daemon::{InProcess, Reader, publish};
use common::security::{STREAM_KEY, stream_jwt};
use rampart::clock::{Clock, SystemClock};
use rampart::secrets::Secret;
use rampart::security::Action::{Play, Publish};
use rampart::security::store::OneTimeToken;
use std::time::{Duration, Instant};

#[test]
fn an_expiring_jwt_ends_playback() {
    let daemon = InProcess::start("", &format!("playJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"));
    let _publisher = publish(&daemon.url("s1"), 60);
    daemon.wait_live("s1", 0);
    let exp = SystemClock.unix_secs() + 10;
    let mut reader = Reader::start(&daemon.url(&format!("s1?jwt={}", stream_jwt("s1", Play, exp))), 30, &[]);
    reader.wait_frames(10);
    reader.client.wait();
    let ended_at = SystemClock.unix_secs();
    assert!(ended_at >= exp && ended_at <= exp + 2, "ended at {ended_at}, grant until {exp}");
    daemon.wait_audit("s1", "session ended: credentials expired");
}

#[test]
fn deleting_a_streams_tokens_ends_the_sessions_they_admitted() {
    let daemon = InProcess::start("", "playTokenControlEnabled=true");
    let store = &daemon.services.stores["LiveApp"];
    let _publisher = publish(&daemon.url("s1"), 60);
    daemon.wait_live("s1", 0);
    let now = SystemClock.unix_secs();
    let token = OneTimeToken {
        token_id: Secret::new("view-1".into()),
        stream_id: "s1".into(),
        kind: Play,
        expire_date: now + 600,
        room_id: None,
    };
    block_on(store.add_token(token, now)).unwrap();
    let mut reader = Reader::start(&daemon.url("s1?token=view-1"), 30, &[]);
    reader.wait_frames(10);

    // What DELETE /broadcasts/s1/tokens does: the tokens go, and so do their sessions.
    let ended = Instant::now();
    assert_eq!(block_on(store.delete_tokens("s1")), Ok(0), "the only token was used");
    assert_eq!(daemon.services.sessions.revoke_one_time_tokens("LiveApp", "s1"), 1);
    reader.client.wait();
    assert!(ended.elapsed() < Duration::from_secs(5), "reader cut off promptly");
    daemon.wait_audit("s1", "session ended: credentials revoked");
}

#[test]
fn a_publisher_whose_jwt_expires_is_cut_off_and_its_readers_end() {
    let daemon = InProcess::start("", &format!("publishJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"));
    let exp = SystemClock.unix_secs() + 10;
    let mut publisher = publish(&daemon.url(&format!("s1?jwt={}", stream_jwt("s1", Publish, exp))), 60);
    daemon.wait_live("s1", 0);
    let mut reader = Reader::start(&daemon.url("s1"), 60, &[]);
    reader.wait_frames(10);
    assert!(!publisher.wait(), "the publisher is disconnected");
    assert!(reader.client.wait(), "its reader ends cleanly");
    daemon.wait_audit("s1", "session ended: credentials expired");
    assert!(daemon.services.hub.live_streams().is_empty());
}
