//! The box's disks moved to another box (a fresh swtpm state: another TPM). The daemon starts,
//! so the panel can be reached, but every mechanism whose secret was sealed by the old TPM
//! refuses: the log names each key once, the audit trail and the system status say why.
//! Entering the secrets again through the REST API seals them afresh and makes them work.

mod common;

use common::daemon::{Reader, publish, wait_for};
use common::rest::Rest;
use common::sealed::{hash_query, publish_with_hash, totp_code, wait_event};
use common::security::{STREAM_KEY, stream_jwt};
use common::swtpm::Swtpm;
use common::{ConfigDir, Daemon};
use rampart::clock::{Clock, SystemClock};
use rampart::security::Action::{Play, Publish};

const HASH_SECRET: &str = "hash-secret-of-the-first-box-7a0e";
const VIEWER_KEY: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";
const SUBSCRIBERS: &str = "/LiveApp/rest/v2/broadcasts/s2/subscribers";

fn start(config: &ConfigDir) -> Daemon {
    Daemon::start(&["--config", config.path().to_str().unwrap()])
}

/// Points `secrets.tpmDevice` at `tpm`.
fn use_tpm(config: &ConfigDir, tpm: &Swtpm) {
    let file = config.file("server.properties");
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("secrets.tpmDevice=")).collect();
    std::fs::write(&file, format!("{}\nsecrets.tpmDevice={}\n", kept.join("\n"), tpm.device())).unwrap();
}

fn register_viewer(rest: &Rest) {
    let body = format!(r#"{{"subscriberId":"viewer","b32Secret":"{VIEWER_KEY}","type":"play"}}"#);
    let added = rest.post(SUBSCRIBERS, &body);
    assert_eq!(added.status, 200, "{}", added.body);
}

/// The keys the system status lists as not opening.
fn unopenable(panel: &Rest) -> Vec<String> {
    let status = panel.get("/rest/v2/system-status").json();
    let list = status["secrets"]["unopenable"].as_array().cloned().unwrap_or_default();
    list.iter().map(|u| format!("{}: {}", u["key"].as_str().unwrap_or(""), u["why"].as_str().unwrap_or(""))).collect()
}

#[test]
fn another_tpm_fails_closed_until_the_secrets_are_entered_again() {
    let own = Swtpm::fresh();
    let config = ConfigDir::loopback(&format!("secrets.store=tpm\nsecrets.tpmDevice={}\n", own.device())).app(
        "LiveApp",
        &format!(
            "hashControlPublishEnabled=true\ntokenHashSecret={HASH_SECRET}\nplayJwtControlEnabled=true\n\
             jwtStreamSecretKey={STREAM_KEY}\nenableTimeTokenForPlay=true\n"
        ),
    );
    let mut first = start(&config);
    let http = first.listening("HTTP");
    register_viewer(&Rest::new(http));
    drop(first);

    let other = Swtpm::fresh();
    use_tpm(&config, &other);
    let mut daemon = start(&config);
    let rtmp = daemon.listening("RTMP");
    let http = daemon.listening("HTTP");
    let lines = |needle: &str| daemon.seen.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("refused: the sealed data key was made by another TPM"), 1, "{:#?}", daemon.seen);
    assert_eq!(lines("apps/LiveApp.properties: tokenHashSecret cannot be opened"), 1, "{:#?}", daemon.seen);
    assert_eq!(lines("apps/LiveApp.properties: jwtStreamSecretKey cannot be opened"), 1, "{:#?}", daemon.seen);
    assert_eq!(lines("viewer"), 1, "the subscriber's key, once: {:#?}", daemon.seen);
    assert!(!daemon.seen.iter().any(|l| l.contains(HASH_SECRET) || l.contains(STREAM_KEY)));

    let code = std::fs::read_to_string(config.file("data/setup-code")).expect("setup code");
    let mut panel = Rest::new(http).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let listed = unopenable(&panel);
    for key in ["a data key", "tokenHashSecret", "jwtStreamSecretKey", "TOTP key of subscriber viewer of stream s2"] {
        assert!(listed.iter().any(|u| u.starts_with(key)), "{key} in {listed:#?}");
    }
    assert!(!publish_with_hash(rtmp, "s1", HASH_SECRET).wait(), "refused: tokenHashSecret does not open");
    wait_event(&panel, "s1", false, "tokenHashSecret cannot be opened");

    let body = format!(r#"{{"tokenHashSecret": "{HASH_SECRET}", "jwtStreamSecretKey": "{STREAM_KEY}"}}"#);
    let entered = panel.put("/rest/v2/applications/settings/LiveApp", &body);
    assert_eq!(entered.status, 200, "{}", entered.body);
    register_viewer(&panel);
    let listed = unopenable(&panel);
    assert!(listed.iter().all(|u| u.starts_with("a data key")), "only the old data key is left: {listed:#?}");

    let query = hash_query("s2", Publish, HASH_SECRET);
    let mut publisher = publish(&format!("rtmp://{rtmp}/LiveApp/s2?{query}"), 120);
    wait_for("s2 live", || panel.get("/rest/v2/live-streams").body.contains("\"s2\""));
    let jwt = stream_jwt("s2", Play, SystemClock.unix_secs() + 3600);
    let play =
        format!("rtmp://{rtmp}/LiveApp/s2?jwt={jwt}&subscriberId=viewer&subscriberCode={}", totp_code(VIEWER_KEY));
    Reader::start(&play, 120, &[]).wait_frames(10);
    publisher.0.kill().unwrap();
}
