//! A token the REST API makes lives at most `server.maxTokenLifetime` (30 days by default): an
//! `expireDate` of u64::MAX once made one-time tokens that were never purged, until 10,000 of
//! them made the store refuse every new token. A later date is clamped, and the answer says so.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;
use std::time::{SystemTime, UNIX_EPOCH};

const API: &str = "/LiveApp/rest/v2/broadcasts/cam1";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn jwt_exp(jwt: &str) -> u64 {
    use base64::Engine;
    let claims = jwt.split('.').nth(1).expect("a JWT has claims");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).expect("base64url");
    serde_json::from_slice::<serde_json::Value>(&claims).expect("JSON claims")["exp"].as_u64().expect("exp")
}

#[test]
fn every_kind_of_token_is_clamped_to_the_lifetime_and_says_so() {
    let daemon = InProcess::start(
        "server.maxTokenLifetime=3600",
        "jwtStreamSecretKey=stream-secret-0123456789abcdef0123\ntokenHashSecret=hash-secret",
    );
    let api = Rest::new(daemon.addr("HTTP"));
    for call in ["token", "jwt-token", "hash-token"] {
        let before = now();
        let answer = api.get(&format!("{API}/{call}?expireDate={}&type=play", u64::MAX));
        assert_eq!(answer.status, 200, "{call}: {}", answer.body);
        let token = answer.json();
        let expire_date = token["expireDate"].as_u64().expect("expireDate");
        assert!((before + 3600..=now() + 3600).contains(&expire_date), "{call}: {expire_date}");
        let message = token["message"].as_str().unwrap_or_default();
        assert!(message.contains("server.maxTokenLifetime"), "{call}: {}", answer.body);
        if call == "jwt-token" {
            assert_eq!(
                jwt_exp(token["tokenId"].as_str().expect("tokenId")),
                expire_date,
                "the JWT's exp is clamped too"
            );
        }
    }

    let within = now() + 600;
    let token = api.get(&format!("{API}/token?expireDate={within}&type=play")).json();
    assert_eq!(token["expireDate"].as_u64(), Some(within), "a date within the lifetime is kept");
    assert!(token.get("message").is_none(), "{token}");
}

#[test]
fn the_default_lifetime_is_thirty_days() {
    let daemon = InProcess::start("", "");
    let api = Rest::new(daemon.addr("HTTP"));
    let before = now();
    let token = api.get(&format!("{API}/token?expireDate={}&type=publish", u64::MAX)).json();
    let expire_date = token["expireDate"].as_u64().expect("expireDate");
    assert!((before + 30 * 86_400..=now() + 30 * 86_400).contains(&expire_date), "{token}");
}
