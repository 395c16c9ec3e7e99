//! With sslEnabled, passwords are taken over HTTPS only: the first password and a login over
//! plain HTTP are refused with the HTTPS URL, and no cookie is set.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;

const PASSWORD: &str = "a long admin password";

#[test]
fn logins_over_plain_http_are_refused_when_https_is_on() {
    let daemon = InProcess::start("sslEnabled=true\n", "");
    let https_port = daemon.addr("HTTPS").port();
    let mut plain = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    let first = plain.login("/rest/v2/users/initial", "admin", PASSWORD);
    assert_eq!(first.status, 403, "{}", first.body);
    assert!(first.header("set-cookie").is_none());
    let url = format!("https://127.0.0.1:{https_port}/rest/v2/users/initial");
    assert!(first.json()["message"].as_str().unwrap().contains(&url), "{}", first.body);

    let cert = daemon.config.file("data/device-cert.pem");
    let mut secure = Rest::new(daemon.addr("HTTPS")).tls(&cert).setup_code(&daemon.setup_code());
    assert_eq!(secure.login("/rest/v2/users/initial", "admin", PASSWORD).status, 200, "over HTTPS it works");

    let login = plain.login("/rest/v2/users/authenticate", "admin", PASSWORD);
    assert_eq!(login.status, 403, "{}", login.body);
    assert!(login.header("set-cookie").is_none());
    assert!(plain.cookie.is_none());
    assert!(daemon.api_refused("passwords are sent over HTTPS only"));
}
