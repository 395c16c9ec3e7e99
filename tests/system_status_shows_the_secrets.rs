//! The system status says what seals the secrets (the store, whether it is hardware, whether a
//! data key is open) and lists the secrets that do not open: here a data key file that is not
//! one, beside the new key made in its place.

mod common;

use common::ConfigDir;
use common::daemon::InProcess;
use common::rest::Rest;
use serde_json::json;

#[test]
fn the_system_status_shows_the_store_and_what_does_not_open() {
    let config = ConfigDir::loopback("").app("LiveApp", "");
    let keys = config.file("data/secrets");
    std::fs::create_dir_all(&keys).expect("secrets dir");
    std::fs::write(keys.join("datakey.1"), b"not a data key").expect("write");
    let daemon = InProcess::start_in(config);
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let status = panel.get("/rest/v2/system-status").json();
    let secrets = &status["secrets"];
    let store = &secrets["store"];
    assert_eq!(store["description"], "a key file (not hardware-protected)", "{status}");
    assert_eq!(store["hardware"], false);
    assert_eq!(store["ready"], true, "a new data key was made");
    let problem = format!("{}: corrupt: not a rampart data key file", keys.join("datakey.1").display());
    assert_eq!(store["problems"], json!([problem]));
    assert_eq!(secrets["unopenable"], json!([{ "place": "data.dir/secrets", "key": "a data key", "why": problem }]));
    assert!(status.get("tpm").is_none(), "the secrets object replaces the old TPM field");
    assert!(keys.join("datakey.2").exists());
}
