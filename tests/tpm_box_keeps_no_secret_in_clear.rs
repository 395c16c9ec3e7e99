//! Every secret of a TPM-sealed box set through the REST API (each secret setting, subscribers'
//! TOTP keys, one-time tokens) is found nowhere in clear: not in the configuration directory, the
//! data directory, the daemon's log or any API answer (but the one that made a token), in any
//! encoding (raw, base64, base64url, base32, hex).

mod common;

use common::leaks::{files_holding, forms};
use common::rest::{Answer, Rest};
use common::swtpm::Swtpm;
use common::{ConfigDir, Daemon};
use rampart::clock::{Clock, SystemClock};
use rampart::security::totp;

const APP_SECRETS: [(&str, &str); 6] = [
    ("tokenHashSecret", "hash-secret-through-the-api-0c1f"),
    ("jwtStreamSecretKey", "stream-jwt-key-through-the-api-6b2a9e41"),
    ("jwtSecretKey", "api-jwt-key-through-the-api-93d0"),
    ("timeTokenSecretForPublish", "totp-publish-secret-through-api-55"),
    ("timeTokenSecretForPlay", "totp-play-secret-through-api-77a"),
    ("subscriberAuthenticationKey", "subscriber-auth-key-through-api-1e"),
];
const SERVER_SECRET: (&str, &str) = ("server.jwtServerSecretKey", "server-jwt-key-through-the-api-4f");
const SUBSCRIBER_KEYS: [&str; 2] = ["JBSWY3DPEHPK3PXPJBSWY3DP", "KRUGS4ZANFZSAYJAONSWG4TFOQQGWZLZ"];
const API: &str = "/LiveApp/rest/v2";

fn json_of(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": \"{v}\"")).collect();
    format!("{{{}}}", fields.join(", "))
}

fn ok(answer: Answer, answers: &mut Vec<String>) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answers.push(answer.body);
}

#[test]
fn no_secret_set_through_the_api_is_anywhere_in_clear() {
    let tpm = Swtpm::fresh();
    let config = ConfigDir::loopback(&format!("secrets.store=tpm\nsecrets.tpmDevice={}\n", tpm.device()));
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let http = daemon.listening("HTTP");
    let code = std::fs::read_to_string(config.file("data/setup-code")).expect("setup code");
    let mut panel = Rest::new(http).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    let mut answers = Vec::new();
    ok(panel.put("/rest/v2/applications/settings/LiveApp", &json_of(&APP_SECRETS)), &mut answers);
    ok(panel.put("/rest/v2/server-settings", &json_of(&[SERVER_SECRET])), &mut answers);
    for (n, b32) in SUBSCRIBER_KEYS.iter().enumerate() {
        let body = format!(r#"{{"subscriberId":"cam{n}","b32Secret":"{b32}","type":"publish"}}"#);
        ok(panel.post(&format!("{API}/broadcasts/s1/subscribers"), &body), &mut answers);
    }
    let expiry = SystemClock.unix_secs() + 600;
    let tokens: Vec<String> = (0..2)
        .map(|_| {
            let made = panel.get(&format!("{API}/broadcasts/s1/token?expireDate={expiry}&type=play"));
            assert_eq!(made.status, 200, "{}", made.body);
            made.json()["tokenId"].as_str().expect("a token id").to_string()
        })
        .collect();
    for path in [
        "/rest/v2/applications/settings/LiveApp",
        "/rest/v2/server-settings",
        "/rest/v2/system-status",
        "/rest/v2/security-events",
        "/rest/v2/live-streams",
        "/rest/v2/metrics",
        "/rest/v2/applications",
        &format!("{API}/broadcasts/list/0/50"),
        &format!("{API}/broadcasts/s1/tokens/list/0/50"),
        &format!("{API}/broadcasts/s1/subscribers/list/0/50"),
    ] {
        ok(panel.get(path), &mut answers);
    }
    let shown = panel.get("/rest/v2/applications/settings/LiveApp").json();
    assert!(APP_SECRETS.iter().all(|(key, _)| shown[key] == "***"), "each secret is set: {shown}");

    let mut needles: Vec<Vec<u8>> = Vec::new();
    for (_, secret) in APP_SECRETS.iter().chain([&SERVER_SECRET]) {
        needles.extend(forms(secret.as_bytes()));
    }
    for b32 in SUBSCRIBER_KEYS {
        needles.push(b32.as_bytes().to_vec());
        needles.extend(forms(&totp::decode_base32(b32).unwrap()));
    }
    for token in &tokens {
        needles.extend(forms(token.as_bytes()));
    }
    assert_eq!(files_holding(config.path(), &needles), Vec::new(), "secrets in clear on disk");
    let text = |bytes: &Vec<u8>| String::from_utf8_lossy(bytes).into_owned();
    for answer in &answers {
        assert!(!needles.iter().any(|n| answer.contains(&text(n))), "a secret in an API answer: {answer}");
    }
    daemon.child.kill().unwrap();
    let log = daemon.rest().join("\n");
    assert!(log.contains("secrets: sealed by TPM 2.0 at swtpm:127.0.0.1"), "{log}");
    assert!(!needles.iter().any(|n| log.contains(&text(n))), "a secret in the log:\n{log}");
}
