//! A play admitted by a one-time token makes its consume durable as one small journal record
//! with one fdatasync, however many tokens the store holds: the whole datastore (two copies of
//! every token) was rewritten with four fsyncs for each admission before.

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::{ConfigDir, block_on};
use rampart::clock::{Clock, SystemClock};
use rampart::secrets::Secret;
use rampart::security::Action::Play;
use rampart::security::store::{OneTimeToken, SecurityStore};
use rampart::storage::fs::{CountingFs, RealFs};
use std::sync::Arc;

/// Tokens in the store besides the one used.
const OTHER_TOKENS: usize = 1_000;

#[test]
fn a_token_admission_writes_one_record_with_one_fdatasync() {
    let config = ConfigDir::loopback("rtmps.port=0\nhttps.port=0").app("LiveApp", "playTokenControlEnabled=true");
    // Only the datastore's files: whatever else the storage worker comes to write is not counted.
    let fs = Arc::new(CountingFs::of_files(RealFs, "store-LiveApp."));
    let daemon = InProcess::start_on(config, fs.clone());
    let store = &daemon.services.stores["LiveApp"];
    let now = SystemClock.unix_secs();
    let token = |id: String| OneTimeToken {
        token_id: Secret::new(id),
        stream_id: "cam".into(),
        kind: Play,
        expire_date: now + 600,
        room_id: None,
    };
    for i in 0..OTHER_TOKENS {
        block_on(store.add_token(token(format!("other-token-{i:05}-0123456789")), now)).unwrap();
    }
    block_on(store.add_token(token("the-token-played-with".into()), now)).unwrap();
    let _publisher = publish(&daemon.url("cam"), 30);
    daemon.wait_live("cam", 0);

    let before = fs.counts();
    Reader::start(&daemon.url("cam?token=the-token-played-with"), 1, &[]).wait_frames(10);
    let after = fs.counts();
    assert!(store.one_time_token("the-token-played-with").is_none(), "consumed");
    let (syncs, bytes) = (after.syncs - before.syncs, after.bytes_written - before.bytes_written);
    println!("one admission: {bytes} bytes, {syncs} syncs");
    assert_eq!(syncs, 1, "one fdatasync for the consume");
    assert!(bytes < 200, "one record, not the store: {bytes} bytes");
}
