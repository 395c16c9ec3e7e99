//! Streams, tokens and subscribers written to the datastore are there after the daemon
//! restarts, and a one-time token consumed by a play stays consumed.

mod common;

use common::block_on;
use common::daemon::{InProcess, Reader, publish};
use rampart::clock::{Clock, SystemClock};
use rampart::secrets::Secret;
use rampart::security::Action::Play;
use rampart::security::store::{OneTimeToken, SecurityStore};
use rampart::store::Broadcast;

#[test]
fn a_consumed_token_stays_consumed_across_a_restart() {
    let settings = "playTokenControlEnabled=true\nacceptOnlyStreamsInDataStore=true";
    let daemon = InProcess::start("", settings);
    let store = &daemon.services.stores["LiveApp"];
    let now = SystemClock.unix_secs();
    block_on(store.add_broadcast(Broadcast::new("cam", 0))).unwrap();
    for id in ["used-before-restart", "kept-for-later"] {
        let token = OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: "cam".into(),
            kind: Play,
            expire_date: now + 600,
            room_id: None,
        };
        block_on(store.add_token(token, now)).unwrap();
    }
    let _publisher = publish(&daemon.url("cam"), 30);
    daemon.wait_live("cam", 0);
    Reader::start(&daemon.url("cam?token=used-before-restart"), 1, &[]).wait_frames(10);

    let daemon = daemon.restart();
    let store = &daemon.services.stores["LiveApp"];
    assert!(store.stream_registered("cam"), "the registered stream is still there");
    assert!(store.one_time_token("kept-for-later").is_some());
    assert!(store.one_time_token("used-before-restart").is_none());

    let _publisher = publish(&daemon.url("cam"), 30);
    daemon.wait_live("cam", 0);
    let mut replay = Reader::start(&daemon.url("cam?token=used-before-restart"), 2, &[]);
    assert!(!replay.client.wait(), "the used token does not work again");
    daemon.wait_audit("cam", "one-time token unknown or already used");
    Reader::start(&daemon.url("cam?token=kept-for-later"), 2, &[]).wait_frames(10);
}
