//! The application REST API in Ant Media Server's shapes: broadcasts, one-time and JWT tokens
//! that ffmpeg then publishes with, TOTP subscribers and rooms; wrong input gets a 4xx that
//! says what is wrong, and deleting a stream's tokens ends the sessions they admitted.

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::rest::Rest;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

const API: &str = "/LiveApp/rest/v2";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn message(answer: &common::rest::Answer) -> String {
    answer.json()["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn broadcasts_are_created_listed_and_deleted() {
    let daemon = InProcess::start("", "");
    let api = Rest::new(daemon.addr("HTTP"));
    let made = api.post(&format!("{API}/broadcasts/create"), r#"{"streamId":"cam1","name":"Front door"}"#);
    assert_eq!(made.status, 200, "{}", made.body);
    let made = made.json();
    assert_eq!((made["streamId"].as_str(), made["name"].as_str()), (Some("cam1"), Some("Front door")));
    assert_eq!((made["type"].as_str(), made["status"].as_str()), (Some("liveStream"), Some("created")));
    assert!(made["date"].as_u64().unwrap() >= (now() - 5) * 1000);

    let taken = api.post(&format!("{API}/broadcasts/create"), r#"{"streamId":"cam1"}"#);
    assert_eq!((taken.status, message(&taken).as_str()), (400, "stream \"cam1\" exists already"));
    let generated = api.post(&format!("{API}/broadcasts/create"), "{}").json();
    assert!(generated["streamId"].as_str().is_some_and(|id| id.len() >= 12), "an id is made when none is given");

    for (body, why) in [
        ("{not json", "invalid JSON body"),
        (r#"{"streamId":"../etc"}"#, "streamId must be"),
        (r#"{"streamId":"ok","type":"VoD"}"#, "only liveStream"),
    ] {
        let bad = api.post(&format!("{API}/broadcasts/create"), body);
        assert_eq!(bad.status, 400, "{body}");
        assert!(message(&bad).contains(why), "{body}: {}", bad.body);
    }

    let list = api.get(&format!("{API}/broadcasts/list/0/10")).json();
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(api.get(&format!("{API}/broadcasts/list/0/x")).status, 400);
    assert_eq!(api.get(&format!("{API}/broadcasts/cam1")).json()["name"], "Front door");
    assert_eq!(api.delete(&format!("{API}/broadcasts/cam1")).status, 200);
    assert_eq!(api.get(&format!("{API}/broadcasts/cam1")).status, 404);
    assert_eq!(api.get("/NoSuchApp/rest/v2/broadcasts/list/0/10").status, 404);
}

#[test]
fn a_one_time_token_from_the_api_publishes_once_and_its_deletion_ends_the_session() {
    let daemon = InProcess::start("", "publishTokenControlEnabled=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    for (query, why) in [
        ("type=publish", "expireDate must be"),
        ("expireDate=5&type=publish", "in the past"),
        (&format!("expireDate={}&type=record", now() + 60) as &str, "type must be publish or play"),
    ] {
        let bad = api.get(&format!("{API}/broadcasts/s1/token?{query}"));
        assert_eq!(bad.status, 400, "{query}");
        assert!(message(&bad).contains(why), "{query}: {}", bad.body);
    }
    let token = api.get(&format!("{API}/broadcasts/s1/token?expireDate={}&type=publish", now() + 600)).json();
    assert_eq!((token["streamId"].as_str(), token["type"].as_str()), (Some("s1"), Some("publish")));
    let token_id = token["tokenId"].as_str().unwrap().to_string();

    let mut publisher = publish(&daemon.url(&format!("s1?token={token_id}")), 120);
    daemon.wait_live("s1", 0);
    let reader = Reader::start(&daemon.url("s1"), 120, &[]);
    reader.wait_frames(30);
    let mut second = publish(&daemon.url(&format!("s2?token={token_id}")), 2);
    assert!(!second.wait(), "a used token opens nothing else");

    let deleted = api.delete(&format!("{API}/broadcasts/s1/tokens"));
    assert_eq!(deleted.status, 200);
    assert!(!publisher.wait(), "the publisher admitted by the deleted token is cut off");
    daemon.wait_audit("DELETE /LiveApp/rest/v2/broadcasts/s1/tokens", "1 session(s) ended");
}

#[test]
fn the_token_list_shows_the_hash_of_each_id_never_the_id() {
    use base64::Engine as _;
    let daemon = InProcess::start("", "playTokenControlEnabled=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    let expire = now() + 600;
    let made = api.get(&format!("{API}/broadcasts/s1/token?expireDate={expire}&type=play&roomId=r1")).json();
    let token_id = made["tokenId"].as_str().unwrap().to_string();
    api.get(&format!("{API}/broadcasts/other/token?expireDate={expire}&type=play"));

    let list = api.get(&format!("{API}/broadcasts/s1/tokens/list/0/10"));
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(!list.body.contains(&token_id), "the id is not kept: {}", list.body);
    let digest = ring::digest::digest(&ring::digest::SHA256, token_id.as_bytes());
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    let expected = serde_json::json!([{
        "tokenId": null, "tokenSha256": hash, "streamId": "s1", "expireDate": expire, "type": "play", "roomId": "r1"
    }]);
    assert_eq!(list.json(), expected);
    assert_eq!(api.get(&format!("{API}/broadcasts/s1/tokens/list/1/10")).json(), Value::Array(vec![]));
    assert_eq!(api.get(&format!("{API}/broadcasts/s1/tokens/list/0/x")).status, 400);
}

#[test]
fn a_stream_jwt_from_the_api_is_accepted_by_the_pipeline() {
    let key = "stream-jwt-key-of-at-least-32-characters!";
    let daemon = InProcess::start("", &format!("playJwtControlEnabled=true\njwtStreamSecretKey={key}\n"));
    let api = Rest::new(daemon.addr("HTTP"));
    let made = api.get(&format!("{API}/broadcasts/s1/jwt-token?expireDate={}&type=play", now() + 600)).json();
    let jwt = made["tokenId"].as_str().unwrap().to_string();
    let mut publisher = publish(&daemon.url("s1"), 120);
    daemon.wait_live("s1", 0);
    let reader = Reader::start(&daemon.url(&format!("s1?jwt={jwt}")), 120, &[]);
    reader.wait_frames(30);
    drop(reader);
    publisher.0.kill().unwrap();

    let unset = InProcess::start("", "");
    let answer = Rest::new(unset.addr("HTTP"))
        .get(&format!("{API}/broadcasts/s1/jwt-token?expireDate={}&type=play", now() + 60));
    assert_eq!((answer.status, message(&answer).as_str()), (400, "jwtStreamSecretKey is not set for this application"));
}

#[test]
fn subscribers_get_codes_are_listed_without_keys_and_can_be_blocked() {
    let daemon = InProcess::start("", "enableTimeTokenForPlay=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let body = format!(r#"{{"subscriberId":"tv1","b32Secret":"{secret}","type":"play"}}"#);
    assert_eq!(api.post(&format!("{API}/broadcasts/s1/subscribers"), &body).status, 200);
    let bad = api.post(&format!("{API}/broadcasts/s1/subscribers"), r#"{"subscriberId":"tv2","b32Secret":"1!"}"#);
    assert_eq!(bad.status, 400);
    assert!(message(&bad).contains("b32Secret"));

    let list = api.get(&format!("{API}/broadcasts/s1/subscribers/list/0/10"));
    assert!(!list.body.contains(secret), "the key never comes back");
    assert_eq!(list.json()[0]["subscriberId"], "tv1");

    let code =
        api.get(&format!("{API}/broadcasts/s1/subscribers/tv1/totp")).json()["message"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    let mut publisher = publish(&daemon.url("s1"), 120);
    daemon.wait_live("s1", 0);
    let reader = Reader::start(&daemon.url(&format!("s1?subscriberId=tv1&subscriberCode={code}")), 120, &[]);
    reader.wait_frames(30);

    let blocked = api.put(&format!("{API}/broadcasts/s1/subscribers/tv1/block/600/play"), "");
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    let mut reader = reader;
    reader.client.wait();
    daemon.wait_audit("s1", "session ended: credentials revoked");
    assert_eq!(api.put(&format!("{API}/broadcasts/s1/subscribers/tv1/block/x/play"), "").status, 400);
    assert_eq!(api.put(&format!("{API}/broadcasts/s1/subscribers/nobody/block/60/play"), "").status, 404);
    assert_eq!(api.delete(&format!("{API}/broadcasts/s1/subscribers/tv1")).status, 200);
    assert_eq!(api.get(&format!("{API}/broadcasts/s1/subscribers/list/0/10")).json(), Value::Array(vec![]));
    publisher.0.kill().unwrap();
}

#[test]
fn rooms_are_registered_for_accept_only_rooms_in_data_store() {
    let daemon = InProcess::start("", "");
    let api = Rest::new(daemon.addr("HTTP"));
    let rooms = format!("{API}/broadcasts/conference-rooms");
    assert_eq!(api.post(&rooms, r#"{"roomId":"standup"}"#).status, 200);
    assert_eq!(api.post(&rooms, r#"{"roomId":"standup"}"#).status, 400);
    assert_eq!(api.get(&format!("{rooms}/list/0/10")).json()[0]["roomId"], "standup");
    assert_eq!(api.delete(&format!("{rooms}/standup")).status, 200);
    assert_eq!(api.delete(&format!("{rooms}/standup")).status, 404);
}

#[test]
fn a_hash_token_from_the_api_publishes() {
    let daemon = InProcess::start("", "hashControlPublishEnabled=true\ntokenHashSecret=hash-secret-for-the-test\n");
    let api = Rest::new(daemon.addr("HTTP"));
    let expire_date = now() + 600;
    let made = api.get(&format!("{API}/broadcasts/s1/hash-token?expireDate={expire_date}&type=publish")).json();
    let hash: String = made["tokenId"].as_str().unwrap().bytes().map(|b| format!("%{b:02X}")).collect();
    let mut publisher = publish(&daemon.url(&format!("s1?hash={hash}&expireDate={expire_date}")), 120);
    daemon.wait_live("s1", 0);
    publisher.0.kill().unwrap();
    let mut unsigned = publish(&daemon.url(&format!("s2?hash={hash}&expireDate={expire_date}")), 2);
    assert!(!unsigned.wait(), "the hash opens only its own stream");
    daemon.wait_audit("s2", "hash token does not match");
}
