//! `--data DIR` wins over `data.dir` for as long as the daemon runs: a server-settings change made
//! from the panel once put the file's data.dir back in memory, so the system page reported the
//! wrong directory with no storage, and `restartNeeded` named data.dir, which nobody changed.

mod common;

use common::rest::Rest;
use common::{ConfigDir, Daemon};

#[test]
fn a_settings_change_keeps_the_data_directory_given_on_the_command_line() {
    let config = ConfigDir::new().server("rtmp.host=127.0.0.1\nrtmp.port=0\nhttp.host=127.0.0.1\nhttp.port=0\n");
    let data = tempfile::tempdir().expect("temp dir");
    let mut daemon =
        Daemon::start(&["--config", config.path().to_str().unwrap(), "--data", data.path().to_str().unwrap()]);
    let http = daemon.listening("HTTP");
    let code = std::fs::read_to_string(data.path().join("setup-code")).expect("the setup code in --data");
    let mut panel = Rest::new(http).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let storage = || panel.get("/rest/v2/system-status").json()["dataDir"].clone();
    assert!(storage()["storage"]["totalBytes"].as_u64().is_some_and(|b| b > 0), "storage of --data: {}", storage());

    let changed = panel.put("/rest/v2/server-settings", r#"{"http.maxConnections": 50}"#);
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.json()["restartNeeded"], serde_json::json!(["http.maxConnections"]), "{}", changed.body);
    assert!(
        storage()["storage"]["totalBytes"].as_u64().is_some_and(|b| b > 0),
        "still --data after the change: {}",
        storage()
    );
    assert_eq!(storage()["path"].as_str(), data.path().to_str());
    assert!(data.path().join("admin.json").is_file(), "the admin account is in --data");
    assert!(!config.path().join("rampart-data").exists(), "nothing went to data.dir's default");
}
