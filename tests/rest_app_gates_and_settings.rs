//! The application API's gates (remoteAllowedCIDR, HS256 JWT, RS256 JWT from a JWKS served by a
//! real HTTP server), the settings API (secrets redacted, bad values refused with their key,
//! changes kept across a restart), the security headers, the event log and the metrics.

mod common;

use common::daemon::InProcess;
use common::http_server::{Server, json};
use common::jwk::RsaKey;
use common::rest::Rest;
use common::security::jwt;
use serde_json::json as j;
use std::time::{SystemTime, UNIX_EPOCH};

const LIST: &str = "/LiveApp/rest/v2/broadcasts/list/0/10";
const API_KEY: &str = "application-api-secret-key";

fn exp() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600
}

#[test]
fn remote_allowed_cidr_guards_the_application_api() {
    let daemon = InProcess::start("", "remoteAllowedCIDR=127.0.0.1\n");
    let addr = daemon.addr("HTTP");
    assert_eq!(Rest::new(addr).get(LIST).status, 200);
    let outsider = Rest::new(addr).from("127.0.0.2").get(LIST);
    assert_eq!(outsider.status, 403);
    assert_eq!(outsider.json()["message"], "address not in remoteAllowedCIDR");
    assert!(daemon.api_refused("address not in remoteAllowedCIDR"));
}

#[test]
fn an_hs256_application_jwt_is_required_when_enabled() {
    let daemon = InProcess::start("", &format!("jwtControlEnabled=true\njwtSecretKey={API_KEY}\n"));
    let addr = daemon.addr("HTTP");
    assert_eq!(Rest::new(addr).get(LIST).status, 401);
    assert!(daemon.api_refused("JWT missing"));
    let bad = jwt("not-the-application-key-at-all", j!({ "exp": exp() }));
    assert_eq!(Rest::new(addr).with_header("Authorization", &bad).get(LIST).status, 401);
    assert!(daemon.api_refused("JWT signature invalid"));
    let good = jwt(API_KEY, j!({ "exp": exp() }));
    assert_eq!(Rest::new(addr).with_header("Authorization", &good).get(LIST).status, 200);
    let expired = jwt(API_KEY, j!({ "exp": 1000 }));
    assert_eq!(Rest::new(addr).with_header("Authorization", &format!("Bearer {expired}")).get(LIST).status, 401);
}

#[test]
fn an_rs256_jwt_is_checked_with_the_jwks_of_a_real_server() {
    let key = RsaKey::load("box-key");
    let jwks = j!({ "keys": [key.jwk()] });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let server = Server::start(json("200 OK", &jwks), None).await;
            tx.send(server.addr).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let jwks_addr = rx.recv().unwrap();
    let daemon = InProcess::start("", &format!("jwtControlEnabled=true\njwksURL=http://{jwks_addr}/jwks.json\n"));
    let addr = daemon.addr("HTTP");
    let token = key.token(&j!({ "sub": "backend", "exp": exp() }));
    assert_eq!(Rest::new(addr).with_header("Authorization", &format!("Bearer {token}")).get(LIST).status, 200);
    let hs = jwt(API_KEY, j!({ "exp": exp() }));
    assert_eq!(
        Rest::new(addr).with_header("Authorization", &hs).get(LIST).status,
        401,
        "HS256 is not accepted with a JWKS"
    );
}

#[test]
fn settings_show_secrets_only_as_set_refuse_bad_values_and_survive_a_restart() {
    let daemon = InProcess::start("", "# our comment\ntokenHashSecret=hash-secret-value\n");
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let path = "/rest/v2/applications/settings/LiveApp";
    let shown = panel.get(path);
    assert!(!shown.body.contains("hash-secret-value"), "{}", shown.body);
    let shown = shown.json();
    assert_eq!((shown["tokenHashSecret"].as_str(), shown["jwtSecretKey"].as_str()), (Some("***"), Some("")));
    assert_eq!((shown["timeTokenPeriod"].as_u64(), shown["ipFilterEnabled"].as_bool()), (Some(60), Some(true)));

    let bad = panel.put(path, r#"{"timeTokenPeriod": 5}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["problems"][0]["key"], "timeTokenPeriod");
    let unknown = panel.put(path, r#"{"noSuchKey": 1}"#);
    assert_eq!((unknown.status, unknown.json()["problems"][0]["key"].as_str()), (400, Some("noSuchKey")));
    assert_eq!(panel.get(path).json()["timeTokenPeriod"], 60, "a refused change changes nothing");

    let changed =
        panel.put(path, r#"{"timeTokenPeriod": 30, "hashControlPlayEnabled": true, "tokenHashSecret": "***"}"#);
    assert_eq!(changed.status, 200, "{}", changed.body);
    let server = panel.put("/rest/v2/server-settings", r#"{"http.maxConnections": 50}"#);
    assert_eq!(server.json()["restartNeeded"], j!(["http.maxConnections"]));

    let file = std::fs::read_to_string(daemon.config.file("apps/LiveApp.properties")).unwrap();
    assert!(file.contains("# our comment") && file.contains("tokenHashSecret=sealed:v1:"), "{file}");
    assert!(!file.contains("hash-secret-value"), "sealed at start: {file}");
    let daemon = daemon.restart();
    let mut panel = Rest::new(daemon.addr("HTTP"));
    assert_eq!(panel.login("/rest/v2/users/authenticate", "admin", "a long admin password").status, 200);
    let kept = panel.get(path).json();
    assert_eq!((kept["timeTokenPeriod"].as_u64(), kept["hashControlPlayEnabled"].as_bool()), (Some(30), Some(true)));
    assert_eq!(kept["tokenHashSecret"], "***", "a secret sent back as *** stays as it was");
    assert_eq!(panel.get("/rest/v2/server-settings").json()["http.maxConnections"], 50);
}

#[test]
fn every_answer_carries_the_security_headers() {
    let csp = "default-src 'self'; script-src 'self'";
    let daemon = InProcess::start("", &format!("contentSecurityPolicyHeaderValue={csp}\n"));
    let addr = daemon.addr("HTTP");
    let page = Rest::new(addr).get("/");
    assert!(page.header("content-security-policy").unwrap().starts_with("default-src 'self'; img-src"));
    for answer in [page, Rest::new(addr).get(LIST), Rest::new(addr).get("/nowhere")] {
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert!(answer.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    }
    let app = Rest::new(addr).get(LIST);
    assert_eq!(app.header("content-security-policy"), Some(&format!("{csp}; frame-ancestors 'none'") as &str));
    let huge = Rest::new(addr).post("/LiveApp/rest/v2/broadcasts/create", &"x".repeat(100 * 1024));
    assert_eq!(huge.status, 413);
}

#[test]
fn events_and_metrics_report_decisions() {
    let daemon = InProcess::start("", "remoteAllowedCIDR=127.0.0.1\n");
    let addr = daemon.addr("HTTP");
    assert_eq!(Rest::new(addr).from("127.0.0.2").get(LIST).status, 403);
    let mut panel = Rest::new(addr).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let events = panel.get("/rest/v2/security-events?outcome=refused").json();
    assert_eq!(events[0]["reason"], "address not in remoteAllowedCIDR");
    assert_eq!(events[0]["peer_ip"], "127.0.0.2");
    let metrics = panel.get("/rest/v2/metrics");
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        metrics.body.contains(
            r#"rampart_decisions_total{outcome="refused",action="api",reason="address not in remoteAllowedCIDR"} 1"#
        ),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("rampart_streams_live 0"));
    assert!(metrics.body.contains("rampart_audit_dropped_total 0"), "{}", metrics.body);
    let status = panel.get("/rest/v2/system-status").json();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["auditDropped"], 0);
    assert!(status["dataDir"]["storage"]["freeBytes"].as_u64().unwrap() > 0);
}
