//! One-time tokens made and TOTP subscribers registered through the REST API leave no token id
//! and no TOTP key (raw, base64, base64url, base32, hex) in any file of the data directory
//! (snapshot, journal, audit logs, their good copies), while the tokens and the codes keep
//! working, also after a restart on the same data directory.

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::leaks::{files_holding, forms};
use common::rest::Rest;
use rampart::security::totp;
use std::time::{SystemTime, UNIX_EPOCH};

const API: &str = "/LiveApp/rest/v2";
const KEYS: [(&str, &str); 2] = [("cam", "JBSWY3DPEHPK3PXPJBSWY3DP"), ("cam2", "KRUGS4ZANFZSAYJAONSWG4TFOQQGWZLZ")];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The TOTP code of the base32 key `b32` now.
fn code(b32: &str) -> String {
    totp::code_at(&totp::decode_base32(b32).unwrap(), now(), 60)
}

/// Every form of every secret the test made.
fn needles(tokens: &[String]) -> Vec<Vec<u8>> {
    let mut needles: Vec<Vec<u8>> = tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
    for (_, b32) in KEYS {
        needles.push(b32.as_bytes().to_vec());
        needles.extend(forms(&totp::decode_base32(b32).unwrap()));
    }
    needles
}

#[test]
fn tokens_and_totp_keys_are_not_on_disk_in_clear_and_still_work_after_a_restart() {
    let daemon = InProcess::start("", "playTokenControlEnabled=true\nenableTimeTokenForPublish=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    for (id, b32) in KEYS {
        let body = format!(r#"{{"subscriberId":"{id}","b32Secret":"{b32}","type":"publish"}}"#);
        let added = api.post(&format!("{API}/broadcasts/s1/subscribers"), &body);
        assert_eq!(added.status, 200, "{}", added.body);
    }
    let tokens: Vec<String> = (0..2)
        .map(|_| {
            let made = api.get(&format!("{API}/broadcasts/s1/token?expireDate={}&type=play", now() + 600));
            assert_eq!(made.status, 200, "{}", made.body);
            made.json()["tokenId"].as_str().unwrap().to_string()
        })
        .collect();

    let mut publisher = publish(&daemon.url(&format!("s1?subscriberId=cam&subscriberCode={}", code(KEYS[0].1))), 120);
    daemon.wait_live("s1", 0);
    Reader::start(&daemon.url(&format!("s1?token={}", tokens[0])), 120, &[]).wait_frames(10);
    daemon.services.pipeline.audit().sync();
    let data = daemon.config.file("data");
    assert_eq!(files_holding(&data, &needles(&tokens)), Vec::new(), "secrets in clear while running");
    publisher.0.kill().unwrap();
    drop(publisher);

    let daemon = daemon.restart();
    let data = daemon.config.file("data");
    assert_eq!(files_holding(&data, &needles(&tokens)), Vec::new(), "secrets in clear after a restart");
    let _publisher = publish(&daemon.url(&format!("s1?subscriberId=cam2&subscriberCode={}", code(KEYS[1].1))), 120);
    daemon.wait_live("s1", 0);
    let mut replay = Reader::start(&daemon.url(&format!("s1?token={}", tokens[0])), 2, &[]);
    assert!(!replay.client.wait(), "a token used before the restart stays used");
    Reader::start(&daemon.url(&format!("s1?token={}", tokens[1])), 120, &[]).wait_frames(10);
    daemon.services.pipeline.audit().sync();
    assert_eq!(files_holding(&data, &needles(&tokens)), Vec::new(), "secrets in clear at the end");
}
