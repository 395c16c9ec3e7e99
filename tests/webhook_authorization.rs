//! The security pipeline's webhook against a real HTTP(S) server on 127.0.0.1: what it is sent,
//! how its answers decide, that it fails closed (timeout, huge body, nothing listening), that it
//! is not asked when a local check refused, and that a refusal burns no credential.

mod common;

use common::http_server::{Behavior, Event, HUGE, Server, closed_port, json, response, test_cert};
use common::security::{Fixture, T0};
use rampart::admission::Admission;
use rampart::net::client::{HttpClient, Limits};
use rampart::net::webhook::{HttpWebhook, LIMITS};
use rampart::security::Action::{Play, Publish};
use rampart::security::webhook::Webhook;
use rampart::security::{AccessRequest, Decision, Protocol, Reason, Step, WebhookPending};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOUR: u64 = 3600;

/// Short bounds for the slow and huge cases.
const SHORT: Limits =
    Limits { connect_timeout: Duration::from_secs(1), total_timeout: Duration::from_millis(300), max_body: 64 * 1024 };

fn ok() -> Behavior {
    json("200 OK", &serde_json::json!({"allowed": true}))
}

fn client() -> HttpClient {
    HttpClient::new(None).expect("client")
}

/// `webhookAuthenticateURL` (publish) pointing at `server`'s /auth.
fn publish_hook(server: &Server) -> String {
    format!("webhookAuthenticateURL=http://127.0.0.1:{}/auth\n", server.addr.port())
}

/// `webhookPlayAuthUrl` pointing at `server`'s /play-auth.
fn play_hook(server: &Server) -> String {
    format!("webhookPlayAuthUrl=http://127.0.0.1:{}/play-auth\n", server.addr.port())
}

/// The pending webhook call of a request whose local checks must all pass.
fn pending(f: &Fixture, request: AccessRequest) -> Box<WebhookPending> {
    match f.pipeline.check(request) {
        Step::AskWebhook(pending) => pending,
        Step::Decided(decision) => panic!("decided without the webhook: {decision:?}"),
    }
}

/// Asks the webhook within `limits`, finishes the decision and commits it.
async fn ask_and_resume(f: &Fixture, client: &HttpClient, pending: Box<WebhookPending>, limits: Limits) -> Decision {
    let answer = HttpWebhook::within(client.clone(), limits).ask(&pending.url, pending.payload()).await;
    f.commit(f.pipeline.resume(pending, answer))
}

/// Checks a request whose local checks must pass, then asks the webhook through `client`.
async fn via(f: &Fixture, client: &HttpClient, request: AccessRequest, limits: Limits) -> Decision {
    ask_and_resume(f, client, pending(f, request), limits).await
}

/// Decides `request`, asking the webhook whenever the pipeline wants it.
async fn decide(f: &Fixture, request: AccessRequest) -> Decision {
    match f.pipeline.check(request) {
        Step::Decided(verdict) => f.commit(verdict),
        Step::AskWebhook(pending) => ask_and_resume(f, &client(), pending, LIMITS).await,
    }
}

fn outcome(decision: Decision) -> Result<Vec<&'static str>, Reason> {
    match decision {
        Decision::Allow(grant) => Ok(grant.admitted_by),
        Decision::Deny(reason) => Err(reason),
    }
}

/// The reasons in the audit trail, oldest first.
fn audit_reasons(f: &Fixture) -> Vec<(bool, String)> {
    f.pipeline.audit().recent().into_iter().map(|e| (e.allowed, e.reason)).collect()
}

fn failed(decision: Decision) -> String {
    match decision {
        Decision::Deny(Reason::WebhookFailed(why)) => why,
        other => panic!("expected WebhookFailed, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn status_200_allows_and_the_webhook_gets_exactly_the_request_fields() {
    let mut server = Server::start(ok(), None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let mut request = f.request(Publish, "cam1", "", "::ffff:203.0.113.7");
    request.protocol = Protocol::Whip;
    let pending = pending(&f, request);
    assert_eq!(pending.url.to_string(), format!("http://127.0.0.1:{}/auth", server.addr.port()));

    let decision = ask_and_resume(&f, &client(), pending, LIMITS).await;
    let Decision::Allow(grant) = decision else { panic!("refused: {decision:?}") };
    assert_eq!(grant.admitted_by, vec!["webhook"]);

    let seen = server.request().await;
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("POST", "/auth"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        serde_json::json!({
            "streamId": "cam1",
            "action": "publish",
            "clientIp": "203.0.113.7",
            "appName": "LiveApp",
            "protocol": "whip",
        }),
        "exactly these fields, the IPv4-mapped peer as IPv4"
    );
    assert_eq!(server.requests(), 1);
    assert_eq!(audit_reasons(&f), vec![(true, "admitted by webhook".to_string())]);
}

#[tokio::test(flavor = "current_thread")]
async fn play_webhook_gets_play_and_the_ipv6_peer() {
    let mut server = Server::start(ok(), None).await;
    let f = Fixture::new(&play_hook(&server), "");
    let mut request = f.request(Play, "cam2", "", "2001:db8::5");
    request.protocol = Protocol::Whep;
    let decision = via(&f, &client(), request, LIMITS).await;
    assert_eq!(outcome(decision), Ok(vec!["webhook"]));
    let seen = server.request().await;
    assert_eq!(seen.target, "/play-auth");
    assert_eq!(
        seen.json(),
        serde_json::json!({
            "streamId": "cam2",
            "action": "play",
            "clientIp": "2001:db8::5",
            "appName": "LiveApp",
            "protocol": "whep",
        })
    );
}

#[tokio::test(flavor = "current_thread")]
async fn each_webhook_is_asked_only_for_its_action() {
    let publish_server = Server::start(ok(), None).await;
    let play_server = Server::start(response("403 Forbidden", "", b""), None).await;
    let f = Fixture::new(&(publish_hook(&publish_server) + &play_hook(&play_server)), "");
    assert_eq!(outcome(decide(&f, f.request(Publish, "s1", "", "10.0.0.1")).await), Ok(vec!["webhook"]));
    assert_eq!((publish_server.requests(), play_server.requests()), (1, 0));
    assert_eq!(outcome(decide(&f, f.request(Play, "s1", "", "10.0.0.1")).await), Err(Reason::WebhookRefused(403)));
    assert_eq!((publish_server.requests(), play_server.requests()), (1, 1));

    // With only the publish webhook set, playing is decided locally.
    let only_publish = Fixture::new(&publish_hook(&publish_server), "");
    assert_eq!(outcome(only_publish.decide(only_publish.request(Play, "s1", "", "10.0.0.1"))), Ok(vec![]));
    assert_eq!(publish_server.requests(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn the_admission_asks_the_webhook_itself() {
    let mut server = Server::start(ok(), None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let admission = Admission::new(f.pipeline.clone(), Arc::new(HttpWebhook::new(client())));
    let decision = f.commit(admission.decide(f.request(Publish, "cam1", "", "10.0.0.9")).await);
    assert_eq!(outcome(decision), Ok(vec!["webhook"]));
    assert_eq!(server.request().await.json()["clientIp"], "10.0.0.9");

    server.set(response("403 Forbidden", "", b"no"));
    let decision = f.commit(admission.decide(f.request(Publish, "cam1", "", "10.0.0.9")).await);
    assert_eq!(outcome(decision), Err(Reason::WebhookRefused(403)));
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn status_403_refuses_and_is_audited() {
    let server = Server::start(response("403 Forbidden", "", b"nope"), None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), LIMITS).await;
    assert_eq!(outcome(decision), Err(Reason::WebhookRefused(403)));
    assert_eq!(audit_reasons(&f), vec![(false, "webhook refused with HTTP 403".to_string())]);
    let event = &f.pipeline.audit().recent()[0];
    assert_eq!(
        (event.action, event.stream.as_str(), event.peer_ip.to_string()),
        ("publish", "cam1", "10.0.0.1".into())
    );
}

#[tokio::test(flavor = "current_thread")]
async fn status_500_refuses() {
    let server = Server::start(response("500 Internal Server Error", "", b"boom"), None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), LIMITS).await;
    assert_eq!(outcome(decision), Err(Reason::WebhookRefused(500)));
    assert_eq!(audit_reasons(&f), vec![(false, "webhook refused with HTTP 500".to_string())]);
}

#[tokio::test(flavor = "current_thread")]
async fn other_success_statuses_refuse_too() {
    let server = Server::start(response("204 No Content", "", b""), None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let decision = decide(&f, f.request(Publish, "cam1", "", "10.0.0.1")).await;
    assert_eq!(outcome(decision), Err(Reason::WebhookRefused(204)));
}

#[tokio::test(flavor = "current_thread")]
async fn silent_webhook_times_out_within_the_limit_and_refuses() {
    let mut server = Server::start(Behavior::Hang, None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let pending = pending(&f, f.request(Publish, "cam1", "", "10.0.0.1"));
    let started = Instant::now();
    let decision = ask_and_resume(&f, &client(), pending, SHORT).await;
    let elapsed = started.elapsed();
    assert_eq!(failed(decision), "request timed out");
    assert!(elapsed >= SHORT.total_timeout && elapsed < Duration::from_secs(3), "took {elapsed:?}");
    server.request().await;
    assert!(matches!(server.next().await, Event::PeerClosed), "the connection was not dropped");
    assert_eq!(audit_reasons(&f), vec![(false, "webhook failed: request timed out".to_string())]);
}

#[tokio::test(flavor = "current_thread")]
async fn huge_answer_refuses_even_with_status_200() {
    let mut server = Server::start(Behavior::StreamChunked, None).await;
    let f = Fixture::new(&publish_hook(&server), "");
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), SHORT).await;
    assert_eq!(failed(decision), "response body too large");
    server.request().await;
    assert!(matches!(server.next().await, Event::Streamed { completed: false }), "the whole body was read");

    // A declared Content-Length over the limit is refused before the body is read.
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n").into_bytes();
    head.extend_from_slice(&[b'x'; 1024]);
    server.set(Behavior::Respond(head));
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), SHORT).await;
    assert_eq!(failed(decision), "response body too large");
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_listening_refuses() {
    let port = closed_port().await;
    let f = Fixture::new(&format!("webhookAuthenticateURL=http://127.0.0.1:{port}/auth"), "");
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), SHORT).await;
    let why = failed(decision);
    assert!(why.starts_with("cannot connect: "), "{why}");
    let audited = &audit_reasons(&f)[0];
    assert!(!audited.0 && audited.1.starts_with("webhook failed: cannot connect: "), "{audited:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn https_webhook_with_a_trusted_certificate_allows() {
    let cert = test_cert();
    let mut server = Server::start(ok(), Some(cert.acceptor)).await;
    let trusting = HttpClient::new(Some(cert.pem_file.path())).expect("client with extra trust");
    for host in ["localhost", "127.0.0.1"] {
        let f = Fixture::new(&format!("webhookAuthenticateURL=https://{host}:{}/auth", server.addr.port()), "");
        let decision = via(&f, &trusting, f.request(Publish, "cam1", "", "10.0.0.1"), LIMITS).await;
        assert_eq!(outcome(decision), Ok(vec!["webhook"]), "{host}");
        assert_eq!(server.request().await.json()["streamId"], "cam1");
    }

    // Without the certificate trusted, the same webhook cannot be asked: refused.
    let f = Fixture::new(&format!("webhookAuthenticateURL=https://localhost:{}/auth", server.addr.port()), "");
    let decision = via(&f, &client(), f.request(Publish, "cam1", "", "10.0.0.1"), SHORT).await;
    let why = failed(decision);
    assert!(why.starts_with("TLS error"), "{why}");
    assert_eq!(server.requests(), 2, "no request went through without trust");
}

#[tokio::test(flavor = "current_thread")]
async fn webhook_is_not_asked_when_a_local_check_refuses() {
    let server = Server::start(ok(), None).await;
    let f = Fixture::new(&format!("allowedPublisherCIDR=203.0.113.0/24\n{}", publish_hook(&server)), "");
    assert_eq!(outcome(decide(&f, f.request(Publish, "cam1", "", "198.51.100.7")).await), Err(Reason::PeerNotAllowed));
    assert_eq!(server.requests(), 0, "the webhook was asked after a local refusal");
    // The counter does count: an address inside the CIDR goes on to the webhook.
    assert_eq!(outcome(decide(&f, f.request(Publish, "cam1", "", "203.0.113.7")).await), Ok(vec!["webhook"]));
    assert_eq!(server.requests(), 1);

    let g = Fixture::new(&format!("publishTokenControlEnabled=true\n{}", publish_hook(&server)), "");
    let refused = decide(&g, g.request(Publish, "cam1", "token=unknown", "203.0.113.7")).await;
    assert_eq!(outcome(refused), Err(Reason::OneTimeTokenUnknown));
    assert_eq!(server.requests(), 1, "the webhook was asked after a local refusal");
}

#[tokio::test(flavor = "current_thread")]
async fn one_time_token_survives_a_webhook_refusal() {
    let server = Server::start(response("403 Forbidden", "", b""), None).await;
    let f = Fixture::new(&format!("playTokenControlEnabled=true\n{}", play_hook(&server)), "");
    let token = f.one_time("t1", "cam1", Play, T0 + HOUR);
    let query = format!("token={token}");

    assert_eq!(
        outcome(decide(&f, f.request(Play, "cam1", &query, "10.0.0.1")).await),
        Err(Reason::WebhookRefused(403))
    );
    server.set(ok());
    let Decision::Allow(grant) = decide(&f, f.request(Play, "cam1", &query, "10.0.0.1")).await else {
        panic!("the token was burnt by the refused request")
    };
    assert_eq!(grant.admitted_by, vec!["one-time token", "webhook"]);
    assert_eq!(grant.one_time_token.as_ref().map(|t| t.expose().as_str()), Some("t1"));
    assert_eq!(server.requests(), 2);

    // Now it is used: refused locally, without asking the webhook.
    assert_eq!(
        outcome(decide(&f, f.request(Play, "cam1", &query, "10.0.0.1")).await),
        Err(Reason::OneTimeTokenUnknown)
    );
    assert_eq!(server.requests(), 2);
    assert_eq!(
        audit_reasons(&f),
        vec![
            (false, "webhook refused with HTTP 403".to_string()),
            (true, "admitted by one-time token, webhook".to_string()),
            (false, "one-time token unknown or already used".to_string()),
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn totp_code_survives_a_webhook_refusal() {
    let server = Server::start(response("500 Internal Server Error", "", b""), None).await;
    let f = Fixture::new(
        &format!("enableTimeTokenForPublish=true\ntimeTokenSecretForPublish=publish-secret\n{}", publish_hook(&server)),
        "",
    );
    let query = format!("subscriberId=cam&subscriberCode={}", f.totp_code("cam", "s1", Publish));
    assert_eq!(
        outcome(decide(&f, f.request(Publish, "s1", &query, "10.0.0.1")).await),
        Err(Reason::WebhookRefused(500))
    );
    server.set(ok());
    assert_eq!(outcome(decide(&f, f.request(Publish, "s1", &query, "10.0.0.1")).await), Ok(vec!["TOTP", "webhook"]));
    assert_eq!(outcome(decide(&f, f.request(Publish, "s1", &query, "10.0.0.1")).await), Err(Reason::TotpReplayed));
    assert_eq!(server.requests(), 2);
}
