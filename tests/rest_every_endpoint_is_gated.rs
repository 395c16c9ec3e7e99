//! Every endpoint of the REST API is behind its gate: from outside remoteAllowedCIDR each
//! application call is a 403, without a login each server call is a 401, and from outside the
//! dashboard CIDR each server call is a 403; each refusal is audited. What is written through
//! the API (streams, tokens, subscribers) is still there after a restart.

mod common;

use common::daemon::{InProcess, publish};
use common::rest::Rest;
use std::time::{SystemTime, UNIX_EPOCH};

const APP_CALLS: &[(&str, &str)] = &[
    ("POST", "broadcasts/create"),
    ("GET", "broadcasts/list/0/10"),
    ("GET", "broadcasts/s1"),
    ("DELETE", "broadcasts/s1"),
    ("GET", "broadcasts/s1/token?expireDate=4000000000&type=play"),
    ("GET", "broadcasts/s1/jwt-token?expireDate=4000000000&type=play"),
    ("GET", "broadcasts/s1/hash-token?expireDate=4000000000&type=play"),
    ("DELETE", "broadcasts/s1/tokens"),
    ("GET", "broadcasts/s1/tokens/list/0/10"),
    ("POST", "broadcasts/s1/subscribers"),
    ("GET", "broadcasts/s1/subscribers/list/0/10"),
    ("DELETE", "broadcasts/s1/subscribers/tv1"),
    ("GET", "broadcasts/s1/subscribers/tv1/totp"),
    ("PUT", "broadcasts/s1/subscribers/tv1/block/60/play"),
    ("POST", "broadcasts/conference-rooms"),
    ("GET", "broadcasts/conference-rooms/list/0/10"),
    ("DELETE", "broadcasts/conference-rooms/r1"),
];

const SERVER_CALLS: &[(&str, &str)] = &[
    ("GET", "users/session"),
    ("GET", "applications"),
    ("GET", "settings-schema"),
    ("GET", "server-settings"),
    ("PUT", "server-settings"),
    ("GET", "applications/settings/LiveApp"),
    ("PUT", "applications/settings/LiveApp"),
    ("GET", "security-events"),
    ("GET", "live-streams"),
    ("DELETE", "live-streams/LiveApp/s1"),
    ("GET", "metrics"),
    ("GET", "system-status"),
];

#[test]
fn every_call_is_refused_outside_its_gate_and_audited() {
    let daemon = InProcess::start("server.allowed_dashboard_CIDR=127.0.0.1\n", "remoteAllowedCIDR=127.0.0.1\n");
    let addr = daemon.addr("HTTP");
    let outsider = Rest::new(addr).from("127.0.0.2");
    let stranger = Rest::new(addr);
    for (method, path) in APP_CALLS {
        let answer = outsider.call(method, &format!("/LiveApp/rest/v2/{path}"), Some("{}"));
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
    }
    for (method, path) in SERVER_CALLS {
        let path = format!("/rest/v2/{path}");
        assert_eq!(stranger.call(method, &path, Some("{}")).status, 401, "{method} {path} without a login");
        assert_eq!(outsider.call(method, &path, Some("{}")).status, 403, "{method} {path} from outside");
    }
    // Repeated refusals from one address are folded into counted events: every one is counted.
    let counts = daemon.services.pipeline.audit().counts();
    let refusals: u64 =
        counts.iter().filter(|((allowed, action, _), _)| !allowed && *action == "api").map(|(_, n)| n).sum();
    assert_eq!(refusals as usize, APP_CALLS.len() + 2 * SERVER_CALLS.len(), "every refusal is audited");
    assert!(daemon.api_refused("address not in remoteAllowedCIDR") && daemon.api_refused("login required"));
}

#[test]
fn streams_tokens_and_subscribers_made_through_the_api_survive_a_restart() {
    let daemon = InProcess::start("", "publishTokenControlEnabled=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    assert_eq!(api.post("/LiveApp/rest/v2/broadcasts/create", r#"{"streamId":"cam1"}"#).status, 200);
    let expire = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    let token = api.get(&format!("/LiveApp/rest/v2/broadcasts/cam1/token?expireDate={expire}&type=publish")).json();
    let subscriber = r#"{"subscriberId":"tv1","b32Secret":"JBSWY3DPEHPK3PXPJBSWY3DP","type":"play"}"#;
    assert_eq!(api.post("/LiveApp/rest/v2/broadcasts/cam1/subscribers", subscriber).status, 200);

    let daemon = daemon.restart();
    let api = Rest::new(daemon.addr("HTTP"));
    assert_eq!(api.get("/LiveApp/rest/v2/broadcasts/cam1").json()["streamId"], "cam1");
    assert_eq!(api.get("/LiveApp/rest/v2/broadcasts/cam1/subscribers/list/0/10").json()[0]["subscriberId"], "tv1");
    let _publisher = publish(&daemon.url(&format!("cam1?token={}", token["tokenId"].as_str().unwrap())), 60);
    daemon.wait_live("cam1", 0);
}
