//! With sslEnabled the panel and API are served over HTTPS with the device certificate: HSTS on
//! every answer, a Secure login cookie, and plain HTTP redirecting the panel to HTTPS.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;

#[test]
fn https_serves_the_panel_and_plain_http_redirects_to_it() {
    let daemon = InProcess::start("sslEnabled=true\n", "");
    let cert = daemon.config.file("data/device-cert.pem");
    let mut secure = Rest::new(daemon.addr("HTTPS")).tls(&cert).setup_code(&daemon.setup_code());
    let page = secure.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>rampart</title>"));
    assert_eq!(page.header("strict-transport-security"), Some("max-age=31536000"));
    let login = secure.login("/rest/v2/users/initial", "admin", "a long admin password");
    assert!(login.header("set-cookie").unwrap().ends_with("; Secure"));
    assert_eq!(secure.get("/rest/v2/users/session").json()["username"], "admin");

    let plain = Rest::new(daemon.addr("HTTP")).get("/");
    assert_eq!(plain.status, 308);
    let https_port = daemon.addr("HTTPS").port();
    assert_eq!(plain.header("location"), Some(&format!("https://127.0.0.1:{https_port}/") as &str));
    assert!(plain.header("strict-transport-security").is_none(), "HSTS only over HTTPS");
}
