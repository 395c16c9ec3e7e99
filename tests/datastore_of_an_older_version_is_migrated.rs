//! A datastore an older version wrote, with one-time token ids and TOTP keys in clear
//! (`token_id`, `secret_base64`, in the snapshot and in the journal), is read at start, its ids
//! hashed and its keys sealed, and written again at once: its tokens and subscribers still work,
//! and no clear value remains in any file of the data directory.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::ConfigDir;
use common::daemon::{InProcess, Reader, publish};
use common::leaks::{files_holding, forms};
use rampart::security::totp;
use std::time::{SystemTime, UNIX_EPOCH};

const KEY_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";
const TOKENS: [&str; 3] = ["older-version-token-kept", "older-version-token-used", "older-version-token-expired"];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The snapshot an older version wrote: three tokens and one subscriber, all in clear.
fn old_snapshot(key: &[u8]) -> String {
    let token = |id: &str, expire: u64| {
        format!(r#"{{"token_id":"{id}","stream_id":"s1","kind":"play","expire_date":{expire},"room_id":null}}"#)
    };
    let tokens = [token(TOKENS[0], now() + 600), token(TOKENS[1], now() + 600), token(TOKENS[2], 1_000)].join(",");
    let subscriber = format!(
        r#"{{"subscriber_id":"cam","stream_id":"s1","secret_base64":"{}","kind":"publish","period":null,"blocked_publish_until":0,"blocked_play_until":0}}"#,
        STANDARD.encode(key)
    );
    format!(r#"{{"broadcasts":[],"rooms":[],"tokens":[{tokens}],"subscribers":[{subscriber}]}}"#)
}

/// A journal of epoch 0 (a snapshot without a header) holding one consume by clear id.
fn old_journal(token_id: &str) -> Vec<u8> {
    let record = format!(r#"{{"change":"token_consumed","token_id":"{token_id}"}}"#);
    let header = [&b"rampartJ"[..], &1u32.to_le_bytes(), &0u64.to_le_bytes()].concat();
    [header, rampart::storage::journal::frame(record.as_bytes()).unwrap()].concat()
}

#[test]
fn clear_ids_and_keys_of_an_older_version_are_hashed_sealed_and_gone_from_disk() {
    let key = totp::decode_base32(KEY_B32).unwrap();
    let config = ConfigDir::loopback("rtmps.port=0\nhttps.port=0\n")
        .app("LiveApp", "playTokenControlEnabled=true\nenableTimeTokenForPublish=true\n");
    let data = config.file("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("store-LiveApp.json"), old_snapshot(&key)).unwrap();
    std::fs::write(data.join("store-LiveApp.journal"), old_journal(TOKENS[1])).unwrap();
    let mut needles: Vec<Vec<u8>> = TOKENS.iter().map(|t| t.as_bytes().to_vec()).collect();
    needles.push(KEY_B32.as_bytes().to_vec());
    needles.extend(forms(&key));
    needles.extend([b"token_id".to_vec(), b"secret_base64".to_vec()]);
    assert!(!files_holding(&data, &needles).is_empty(), "the old files hold them");

    let daemon = InProcess::start_in(config);
    assert_eq!(files_holding(&data, &needles), Vec::new(), "rewritten at start");
    let code = totp::code_at(&key, now(), 60);
    let _publisher = publish(&daemon.url(&format!("s1?subscriberId=cam&subscriberCode={code}")), 120);
    daemon.wait_live("s1", 0);
    let mut used = Reader::start(&daemon.url(&format!("s1?token={}", TOKENS[1])), 2, &[]);
    assert!(!used.client.wait(), "the token the old journal consumed stays consumed");
    Reader::start(&daemon.url(&format!("s1?token={}", TOKENS[0])), 120, &[]).wait_frames(10);
    daemon.services.pipeline.audit().sync();
    assert_eq!(files_holding(&data, &needles), Vec::new(), "none comes back");
}
