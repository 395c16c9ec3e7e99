//! The first visitor does not own the box: the first password needs the setup code made at the
//! first start (data.dir/setup-code, readable by its owner only, gone once the admin exists), a
//! page of another origin cannot call the panel's API, and REST bodies must be declared JSON.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;
use std::os::unix::fs::PermissionsExt as _;

const FIRST: &str = "/rest/v2/users/initial";
const BODY: &str = r#"{"email":"admin","password":"a long admin password"}"#;

fn first_login(panel: &Rest) -> serde_json::Value {
    panel.get("/rest/v2/first-login-status").json()["firstLogin"].clone()
}

#[test]
fn a_cross_origin_form_or_a_missing_code_creates_no_admin() {
    let daemon = InProcess::start("server.allowedOrigins=https://studio.example.com\n", "");
    let addr = daemon.addr("HTTP");
    let file = daemon.config.file("data/setup-code");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let code = daemon.setup_code();

    // The form a hostile page submits: cross-origin, text/plain, even with the right code.
    let form = Rest::new(addr).with_header("Origin", "http://evil.example");
    let with_code = format!(r#"{{"email":"admin","password":"a long admin password","setupCode":"{code}"}}"#);
    let refused = form.post_as(FIRST, "text/plain", &with_code);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(daemon.api_refused("another origin"));
    assert_eq!(form.post(FIRST, &with_code).status, 403, "JSON from another origin too");
    let plain = Rest::new(addr).post_as(FIRST, "text/plain", &with_code);
    assert_eq!(plain.status, 415, "{}", plain.body);
    assert!(plain.json()["message"].as_str().unwrap().contains("application/json"));
    assert_eq!(first_login(&Rest::new(addr)), true, "no admin was made");

    // Same origin, but without the code or with a wrong one.
    let own = Rest::new(addr).with_header("Origin", &format!("http://{addr}"));
    let missing = own.post(FIRST, BODY);
    assert_eq!(missing.status, 403, "{}", missing.body);
    assert!(missing.json()["message"].as_str().unwrap().contains("setup code"));
    let mut wrong = Rest::new(addr).setup_code("ABCDEFGHJKLM");
    assert_eq!(wrong.login(FIRST, "admin", "a long admin password").status, 403);
    assert!(wrong.cookie.is_none());
    assert_eq!(first_login(&own), true, "still no admin");

    // A configured origin may call; the right code makes the admin and the file goes.
    let studio = Rest::new(addr).with_header("Origin", "https://studio.example.com");
    assert_eq!(studio.get("/rest/v2/first-login-status").status, 200);
    let mut admin = Rest::new(addr).with_header("Origin", &format!("http://{addr}")).setup_code(&code);
    assert_eq!(admin.login(FIRST, "admin", "a long admin password").status, 200);
    assert!(!file.exists(), "the setup code is removed once the admin exists");
    assert_eq!(first_login(&own), false);
}
