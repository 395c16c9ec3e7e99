//! A sealed secret that does not open (its text was altered in the file) fails closed: the
//! daemon starts, the log names the key once, hash-token publishes are refused with the reason
//! in the audit trail, the application REST API answers 503 naming jwtSecretKey, and GET shows
//! which secrets do not open. Entering the secrets again through the API makes them work.

mod common;

use common::rest::Rest;
use common::sealed::{publish_with_hash, wait_event};
use common::security::jwt;
use common::{ConfigDir, Daemon};
use rampart::clock::{Clock, SystemClock};

const HASH_SECRET: &str = "hash-secret-to-be-altered-91b2";
const API_SECRET: &str = "api-jwt-secret-to-be-altered-3e";
const BROADCASTS: &str = "/LiveApp/rest/v2/broadcasts/list/0/10";

/// `file` with one character of each sealed value's body changed.
fn alter_sealed_values(file: &std::path::Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let altered: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("=sealed:v1:") {
            Some((key, body)) => {
                let mut body = body.to_string().into_bytes();
                let middle = body.len() / 2;
                body[middle] = if body[middle] == b'A' { b'B' } else { b'A' };
                format!("{key}=sealed:v1:{}", String::from_utf8(body).unwrap())
            }
            None => line.to_string(),
        })
        .collect();
    assert_ne!(altered.join("\n"), text.trim_end(), "there were sealed values to alter");
    std::fs::write(file, altered.join("\n") + "\n").unwrap();
}

#[test]
fn an_unopenable_secret_refuses_until_it_is_entered_again() {
    let config = ConfigDir::loopback("").app(
        "LiveApp",
        &format!(
            "hashControlPublishEnabled=true\ntokenHashSecret={HASH_SECRET}\n\
             jwtControlEnabled=true\njwtSecretKey={API_SECRET}\n"
        ),
    );
    let mut first = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    first.listening("HTTP");
    drop(first);
    alter_sealed_values(&config.file("apps/LiveApp.properties"));

    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let rtmp = daemon.listening("RTMP");
    let http = daemon.listening("HTTP");
    let named = |key: &str| {
        let needle = format!("apps/LiveApp.properties: {key} cannot be opened");
        daemon.seen.iter().filter(|l| l.contains(&needle)).count()
    };
    assert_eq!(named("tokenHashSecret"), 1, "{:?}", daemon.seen);
    assert_eq!(named("jwtSecretKey"), 1, "{:?}", daemon.seen);

    let code = std::fs::read_to_string(config.file("data/setup-code")).expect("setup code");
    let mut panel = Rest::new(http).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    assert!(!publish_with_hash(rtmp, "s1", HASH_SECRET).wait(), "refused: the key does not open");
    wait_event(&panel, "s1", false, "tokenHashSecret cannot be opened");
    let api_jwt = jwt(API_SECRET, serde_json::json!({ "exp": SystemClock.unix_secs() + 3600 }));
    let api = Rest::new(http).with_header("Authorization", &format!("Bearer {api_jwt}"));
    let refused = api.get(BROADCASTS);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("jwtSecretKey cannot be opened"), "{}", refused.body);

    let shown = panel.get("/rest/v2/applications/settings/LiveApp").json();
    assert_eq!(shown["tokenHashSecret"], "***", "an unopenable secret is set: {shown}");
    let unopenable = shown["unopenableSecrets"].as_object().expect("the unopenable secrets").clone();
    assert!(unopenable.contains_key("tokenHashSecret") && unopenable.contains_key("jwtSecretKey"), "{shown}");

    let body = format!(r#"{{"tokenHashSecret": "{HASH_SECRET}", "jwtSecretKey": "{API_SECRET}"}}"#);
    let entered = panel.put("/rest/v2/applications/settings/LiveApp", &body);
    assert_eq!(entered.status, 200, "{}", entered.body);
    assert!(publish_with_hash(rtmp, "s2", HASH_SECRET).wait());
    wait_event(&panel, "s2", true, "admitted by hash token");
    let answer = api.get(BROADCASTS);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let shown = panel.get("/rest/v2/applications/settings/LiveApp").json();
    assert_eq!(shown["unopenableSecrets"], serde_json::json!({}), "{shown}");
}
