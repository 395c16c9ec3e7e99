//! Files rampart writes hold secrets (the properties files' keys, subscribers' TOTP keys, token
//! ids, the admin's password hash, the device key), so they are readable by their owner only: a
//! file rampart creates is 0600, the data directory 0700, and a rewrite keeps the mode and owner
//! of the file it replaces. One settings change once turned 0600 properties files (and their
//! good copies) into 0644, and the store files and admin.json were 0644.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_settings_change_keeps_each_files_mode_and_new_files_are_private() {
    let daemon = InProcess::start("rtmpsEnabled=true", "tokenHashSecret=hash-secret-value\n");
    let config = &daemon.config;
    set_mode(&config.file("apps/LiveApp.properties"), 0o600);
    set_mode(&config.file("server.properties"), 0o640);
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    let changed = panel.put("/rest/v2/applications/settings/LiveApp", r#"{"timeTokenPeriod": 30}"#);
    assert_eq!(changed.status, 200, "{}", changed.body);
    let changed = panel.put("/rest/v2/server-settings", r#"{"logLevel": "DEBUG"}"#);
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(mode(&config.file("apps/LiveApp.properties")), 0o600, "the file keeps its mode");
    assert_eq!(mode(&config.file("apps/.LiveApp.properties.good")), 0o600, "its good copy takes the file's");
    assert_eq!(mode(&config.file("server.properties")), 0o640);
    assert_eq!(mode(&config.file(".server.properties.good")), 0o640);

    let token = panel.get(&format!("/LiveApp/rest/v2/broadcasts/cam1/token?expireDate={}&type=play", u32::MAX));
    assert_eq!(token.status, 200, "{}", token.body);
    let data = config.file("data");
    assert_eq!(mode(&data), 0o700, "the data directory");
    daemon.services.pipeline.audit().sync();
    for file in [
        "audit.log",
        "admin-audit.log",
        "store-LiveApp.journal",
        "admin.json",
        ".admin.json.good",
        "device-key.sealed",
        "device-cert.pem",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}
