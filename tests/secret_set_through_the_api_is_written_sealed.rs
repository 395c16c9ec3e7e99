//! A secret set through the REST API (as the panel does) is sealed before it is written: no file
//! of the configuration or data directory holds it (raw, base64 or hex), GET still says only
//! that it is set, and it works at once.

mod common;

use common::leaks::{files_holding, forms};
use common::rest::Rest;
use common::sealed::{publish_with_hash, wait_event};
use common::{ConfigDir, Daemon};

const SECRET: &str = "api-entered-hash-secret-5c1d";

#[test]
fn a_secret_set_through_the_api_is_written_sealed_and_works() {
    let config = ConfigDir::loopback("").app("LiveApp", "# publishers need a hash token\n");
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let rtmp = daemon.listening("RTMP");
    let http = daemon.listening("HTTP");
    let code = std::fs::read_to_string(config.file("data/setup-code")).expect("setup code");
    let mut panel = Rest::new(http).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    let body = format!(r#"{{"hashControlPublishEnabled": true, "tokenHashSecret": "{SECRET}"}}"#);
    let changed = panel.put("/rest/v2/applications/settings/LiveApp", &body);
    assert_eq!(changed.status, 200, "{}", changed.body);
    let file = std::fs::read_to_string(config.file("apps/LiveApp.properties")).unwrap();
    assert!(file.contains("# publishers need a hash token\n"), "{file}");
    assert!(file.contains("tokenHashSecret=sealed:v1:"), "{file}");
    assert_eq!(files_holding(config.path(), &forms(SECRET.as_bytes())), Vec::new(), "the secret in clear");

    let shown = panel.get("/rest/v2/applications/settings/LiveApp");
    assert_eq!(shown.json()["tokenHashSecret"], "***", "{}", shown.body);
    assert_eq!(shown.json()["unopenableSecrets"], serde_json::json!({}), "{}", shown.body);
    assert!(!shown.body.contains(SECRET) && !shown.body.contains("sealed:v1:"), "{}", shown.body);

    assert!(publish_with_hash(rtmp, "s1", SECRET).wait());
    wait_event(&panel, "s1", true, "admitted by hash token");
    // Sent back as the GET showed it, the secret stays as it is.
    let echoed = panel.put("/rest/v2/applications/settings/LiveApp", &shown.body);
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    assert!(publish_with_hash(rtmp, "s2", SECRET).wait());
    wait_event(&panel, "s2", true, "admitted by hash token");
    let log = daemon.seen.join("\n");
    assert!(!log.contains(SECRET), "{log}");
}
