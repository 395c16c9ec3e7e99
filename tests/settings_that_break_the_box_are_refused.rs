//! A settings change that would break the next start is refused when it is made, with the key
//! and why: `server.tlsCertFile=/etc/shadow` and `data.dir=/etc` were once accepted, the next
//! start failed (and made /etc/audit.log). Certificate and key must parse and match, a trust file
//! must parse, and a new data directory must exist, be rampart's user's, and be empty or
//! rampart's own. Nothing is written for a refused change.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;
use serde_json::json;

const PATH: &str = "/rest/v2/server-settings";

fn refused_for(panel: &Rest, body: serde_json::Value, key: &str) -> String {
    let answer = panel.put(PATH, &body.to_string());
    assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    let problem = answer.json()["problems"][0].clone();
    assert_eq!(problem["key"].as_str(), Some(key), "{body}: {}", answer.body);
    problem["message"].as_str().unwrap_or_default().to_string()
}

fn pem_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["box.example".to_string()]).expect("certificate");
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, certified.cert.pem()).expect("write");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write");
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn bad_certificates_keys_trust_files_and_data_directories_are_refused_at_change_time() {
    let daemon = InProcess::start("", "");
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let before = std::fs::read(daemon.config.file("server.properties")).expect("read");
    let files = tempfile::tempdir().expect("temp dir");
    let (cert_a, key_a) = pem_pair(files.path(), "a");
    let (_, key_b) = pem_pair(files.path(), "b");

    let why = refused_for(
        &panel,
        json!({"server.tlsCertFile": "/etc/shadow", "server.tlsKeyFile": key_a}),
        "server.tlsCertFile",
    );
    assert!(why.contains("/etc/shadow") && why.contains("no PEM certificate"), "{why}");
    let why =
        refused_for(&panel, json!({"server.tlsCertFile": cert_a, "server.tlsKeyFile": key_b}), "server.tlsCertFile");
    assert!(!why.is_empty(), "a key of another certificate");
    refused_for(&panel, json!({"server.tlsCertFile": cert_a}), "server.tlsCertFile");
    let why = refused_for(&panel, json!({"server.tlsTrustFile": "/etc/hostname"}), "server.tlsTrustFile");
    assert!(why.contains("/etc/hostname"), "{why}");
    let why = refused_for(
        &panel,
        json!({"server.tlsCertFile": "/dev/zero", "server.tlsKeyFile": key_a}),
        "server.tlsCertFile",
    );
    assert!(why.contains("not a regular file"), "a device is never read: {why}");

    let why = refused_for(&panel, json!({"data.dir": "/etc"}), "data.dir");
    assert!(why.contains("empty or rampart's own"), "{why}");
    refused_for(&panel, json!({"data.dir": files.path().join("missing")}), "data.dir");
    refused_for(&panel, json!({"data.dir": cert_a}), "data.dir");
    assert_eq!(std::fs::read(daemon.config.file("server.properties")).expect("read"), before, "nothing written");

    let fine = panel.put(PATH, &json!({"server.tlsCertFile": cert_a, "server.tlsKeyFile": key_a}).to_string());
    assert_eq!(fine.status, 200, "a matching pair: {}", fine.body);
    let empty = tempfile::tempdir().expect("temp dir");
    let moved = panel.put(PATH, &json!({"data.dir": empty.path()}).to_string());
    assert_eq!(moved.status, 200, "an empty directory: {}", moved.body);
    assert_eq!(moved.json()["restartNeeded"], json!(["data.dir"]), "{}", moved.body);
}
