//! The panel's door: only the dashboard CIDR reaches it, the first start asks for the admin
//! password, a login is a hardened cookie with a CSRF token, repeated failures lock the
//! account, and X-Forwarded-For is believed only from a trusted proxy.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;

const PASSWORD: &str = "a long admin password";

#[test]
fn the_first_start_sets_the_password_and_a_login_carries_a_csrf_token() {
    let daemon = InProcess::start("", "");
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.get("/rest/v2/first-login-status").json()["firstLogin"], true);
    assert_eq!(panel.get("/rest/v2/live-streams").status, 401, "nothing but the login before a login");

    let short = panel.login("/rest/v2/users/initial", "admin", "short");
    assert_eq!(short.status, 400);
    assert!(short.json()["message"].as_str().unwrap().contains("at least 10"), "{}", short.body);

    let created = panel.login("/rest/v2/users/initial", "admin", PASSWORD);
    assert_eq!(created.status, 200, "{}", created.body);
    let cookie = created.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(panel.get("/rest/v2/first-login-status").json()["firstLogin"], false);
    assert_eq!(panel.get("/rest/v2/users/session").json()["username"], "admin");

    let mut again = Rest::new(daemon.addr("HTTP"));
    assert_eq!(again.login("/rest/v2/users/initial", "mallory", PASSWORD).status, 403, "only one first start");
    assert!(daemon.api_refused("admin account"));

    let csrf = panel.csrf.take();
    let forged = panel.delete("/rest/v2/live-streams/LiveApp/s1");
    assert_eq!(forged.status, 403, "a change without the CSRF token is refused: {}", forged.body);
    assert!(daemon.api_refused("CSRF token missing or wrong"));
    panel.csrf = csrf;
    assert_eq!(panel.delete("/rest/v2/live-streams/LiveApp/s1").status, 404, "with it, the call goes through");

    assert_eq!(panel.post("/rest/v2/users/logout", "").status, 200);
    assert_eq!(panel.get("/rest/v2/live-streams").status, 401, "logged out");
}

#[test]
fn repeated_wrong_passwords_lock_the_account() {
    let daemon = InProcess::start("", "");
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", PASSWORD).status, 200);
    let mut guesser = Rest::new(daemon.addr("HTTP"));
    for _ in 0..5 {
        assert_eq!(guesser.login("/rest/v2/users/authenticate", "admin", "wrong password!").status, 401);
    }
    let locked = guesser.login("/rest/v2/users/authenticate", "admin", PASSWORD);
    assert_eq!(locked.status, 403, "locked even with the right password: {}", locked.body);
    assert!(daemon.api_refused("account locked"));
    assert!(guesser.cookie.is_none());
}

#[test]
fn only_the_dashboard_cidr_reaches_the_panel_and_forwarded_for_is_not_believed() {
    let daemon = InProcess::start("server.allowed_dashboard_CIDR=127.0.0.1\n", "");
    let addr = daemon.addr("HTTP");
    assert_eq!(Rest::new(addr).get("/").status, 200);
    let outsider = Rest::new(addr).from("127.0.0.2");
    assert_eq!(outsider.get("/").status, 403);
    assert_eq!(outsider.get("/rest/v2/first-login-status").status, 403);
    assert!(daemon.api_refused("address not in server.allowed_dashboard_CIDR"));
    let spoofing = Rest::new(addr).from("127.0.0.2").with_header("X-Forwarded-For", "127.0.0.1");
    assert_eq!(spoofing.get("/").status, 403, "no proxy is trusted by default");
}

#[test]
fn a_trusted_proxy_passes_on_its_clients_address() {
    let daemon = InProcess::start("server.allowed_dashboard_CIDR=127.0.0.1\nserver.trustedProxyCIDR=127.0.0.3\n", "");
    let addr = daemon.addr("HTTP");
    let proxied = |client: &str| Rest::new(addr).from("127.0.0.3").with_header("X-Forwarded-For", client).get("/");
    assert_eq!(proxied("127.0.0.1").status, 200);
    assert_eq!(proxied("198.51.100.4").status, 403);
}

#[test]
fn a_server_jwt_opens_the_server_api_when_enabled() {
    let secret = "server-secret-of-at-least-32-characters";
    let daemon =
        InProcess::start(&format!("server.jwtServerControlEnabled=true\nserver.jwtServerSecretKey={secret}\n"), "");
    let addr = daemon.addr("HTTP");
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    let good = common::security::jwt(secret, serde_json::json!({ "sub": "ops", "exp": exp }));
    let with =
        |jwt: &str| Rest::new(addr).with_header("Authorization", &format!("Bearer {jwt}")).get("/rest/v2/live-streams");
    assert_eq!(with(&good).status, 200);
    let proxy = Rest::new(addr).with_header("ProxyAuthorization", &good).get("/rest/v2/live-streams");
    assert_eq!(proxy.status, 200, "AMS's header for the server JWT");
    let forged = common::security::jwt("another-secret-of-at-least-32-chars", serde_json::json!({ "exp": exp }));
    assert_eq!(with(&forged).status, 401);
    assert!(daemon.api_refused("server JWT: JWT signature invalid"));
}
