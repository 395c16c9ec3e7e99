//! The outbound HTTP client against real HTTP/1.1 and HTTPS servers on 127.0.0.1, one per test.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http_server::{Behavior, Event, HUGE, Server, closed_port, response, test_cert};
use http::{Method, Uri};
use rampart::net::client::{ClientError, HttpClient, Limits};

const MAX_BODY: usize = 64 * 1024;

fn limits(total: Duration) -> Limits {
    Limits { connect_timeout: Duration::from_secs(2), total_timeout: total, max_body: MAX_BODY }
}

fn plain_client() -> HttpClient {
    HttpClient::new(None).expect("client without extra trust")
}

/// Error messages never carry the query string (which may hold a token).
fn assert_clean(err: &ClientError) {
    let text = err.to_string();
    assert!(!text.contains("token") && !text.contains("s3cr3t"), "message leaks the URL: {text}");
}

#[tokio::test(flavor = "current_thread")]
async fn post_200_sends_method_path_headers_and_body() {
    let mut server = Server::start(response("200 OK", "", b"ok"), None).await;
    let url = server.url("http", "127.0.0.1", "/hook/auth?token=s3cr3t");
    let body = Bytes::from_static(br#"{"stream":"cam1","action":"publish"}"#);
    let reply = plain_client()
        .request(Method::POST, &url, Some(("application/json", body.clone())), limits(Duration::from_secs(5)))
        .await
        .expect("200 response");
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"ok");

    let seen = server.request().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/hook/auth?token=s3cr3t");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("content-length"), Some(body.len().to_string().as_str()));
    assert_eq!(seen.body, body);
    assert_eq!(seen.header("host"), Some(format!("127.0.0.1:{}", server.addr.port()).as_str()));
    assert_eq!(seen.header("user-agent"), Some(concat!("rampart/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(seen.header("connection"), Some("close"));
}

#[tokio::test(flavor = "current_thread")]
async fn get_403_is_returned_without_content_headers() {
    let mut server = Server::start(response("403 Forbidden", "", b"denied"), None).await;
    let url = server.url("http", "127.0.0.1", "/keys");
    let reply = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect("403");
    assert_eq!(reply.status, 403);
    assert_eq!(&reply.body[..], b"denied");
    let seen = server.request().await;
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("GET", "/keys"));
    assert_eq!(seen.header("content-type"), None);
    assert!(seen.body.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn status_500_is_returned() {
    let server = Server::start(response("500 Internal Server Error", "", b"boom"), None).await;
    let url = server.url("http", "127.0.0.1", "/");
    let reply = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect("500");
    assert_eq!(reply.status, 500);
    assert_eq!(&reply.body[..], b"boom");
}

#[tokio::test(flavor = "current_thread")]
async fn redirect_is_not_followed() {
    let mut elsewhere = Server::start(response("200 OK", "", b"followed"), None).await;
    let location = format!("Location: {}\r\n", elsewhere.url("http", "127.0.0.1", "/other"));
    let mut server = Server::start(response("302 Found", &location, b""), None).await;
    let url = server.url("http", "127.0.0.1", "/hook");
    let reply = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect("302");
    assert_eq!(reply.status, 302);
    assert!(reply.body.is_empty());
    assert_eq!(server.request().await.target, "/hook");
    // The call has returned, so a followed redirect would already have reached the second server.
    assert!(elsewhere.events.try_recv().is_err(), "redirect target was contacted");
}

#[tokio::test(flavor = "current_thread")]
async fn silent_server_times_out_and_connection_is_closed() {
    let mut server = Server::start(Behavior::Hang, None).await;
    let url = server.url("http", "127.0.0.1", "/hook?token=s3cr3t");
    let total = Duration::from_millis(300);
    let started = Instant::now();
    let err = plain_client()
        .request(Method::POST, &url, Some(("application/json", Bytes::from_static(b"{}"))), limits(total))
        .await
        .expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert_clean(&err);
    assert!(elapsed >= total && elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // The server did get the whole request, and then saw the client drop the connection.
    assert_eq!(server.request().await.body, b"{}");
    assert!(matches!(server.next().await, Event::PeerClosed));
}

#[tokio::test(flavor = "current_thread")]
async fn huge_streamed_body_is_cut_off() {
    let mut server = Server::start(Behavior::StreamChunked, None).await;
    let url = server.url("http", "127.0.0.1", "/jwks");
    let err = plain_client()
        .request(Method::GET, &url, None, limits(Duration::from_secs(10)))
        .await
        .expect_err("must exceed max_body");
    assert!(matches!(err, ClientError::BodyTooLarge), "{err:?}");
    server.request().await;
    // The client hung up early, so the server's writes failed before the 10 MiB were out.
    assert!(matches!(server.next().await, Event::Streamed { completed: false }));
}

#[tokio::test(flavor = "current_thread")]
async fn declared_huge_body_is_refused() {
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n").into_bytes();
    head.extend_from_slice(&[b'x'; 1024]);
    let server = Server::start(Behavior::Respond(head), None).await;
    let url = server.url("http", "127.0.0.1", "/");
    let err = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect_err("big");
    assert!(matches!(err, ClientError::BodyTooLarge), "{err:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn body_of_exactly_max_body_is_accepted() {
    let server = Server::start(response("200 OK", "", &[b'a'; MAX_BODY]), None).await;
    let url = server.url("http", "127.0.0.1", "/");
    let reply = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect("fits");
    assert_eq!(reply.body.len(), MAX_BODY);
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_listening_is_a_connect_error() {
    let port = closed_port().await;
    let url: Uri = format!("http://127.0.0.1:{port}/hook?token=s3cr3t").parse().expect("url");
    let err =
        plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect_err("refused");
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert!(err.to_string().starts_with("cannot connect: "), "{err}");
    assert_clean(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn https_200_through_extra_trust() {
    let cert = test_cert();
    let client = HttpClient::new(Some(cert.pem_file.path())).expect("client with extra trust");
    let mut server = Server::start(response("200 OK", "", br#"{"keys":[]}"#), Some(cert.acceptor)).await;
    for host in ["localhost", "127.0.0.1"] {
        let url = server.url("https", host, "/.well-known/jwks.json");
        let reply = client.request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect("https 200");
        assert_eq!(reply.status, 200, "{host}");
        assert_eq!(&reply.body[..], br#"{"keys":[]}"#, "{host}");
        assert_eq!(server.request().await.target, "/.well-known/jwks.json");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn https_with_untrusted_certificate_is_a_tls_error() {
    let served = test_cert();
    let trusted_other = test_cert();
    let client = HttpClient::new(Some(trusted_other.pem_file.path())).expect("client");
    let server = Server::start(response("200 OK", "", b"ok"), Some(served.acceptor)).await;
    let url = server.url("https", "localhost", "/hook?token=s3cr3t");
    let err = client.request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect_err("untrusted");
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert_clean(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_response_is_a_protocol_error() {
    let server = Server::start(Behavior::Respond(b"HELLO\r\n\r\n".to_vec()), None).await;
    let url = server.url("http", "127.0.0.1", "/hook?token=s3cr3t");
    let err = plain_client().request(Method::GET, &url, None, limits(Duration::from_secs(5))).await.expect_err("junk");
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    assert_clean(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_urls_and_bad_trust_files_are_rejected() {
    let client = plain_client();
    for url in ["ftp://127.0.0.1/x", "/just/a/path", "http://user:pass@127.0.0.1/"] {
        let url: Uri = url.parse().expect("parses as a URI");
        let err = client.request(Method::GET, &url, None, limits(Duration::from_secs(1))).await.expect_err("bad");
        assert!(matches!(err, ClientError::BadUrl(_)), "{err:?}");
    }
    let missing = std::env::temp_dir().join("rampart-no-such-trust-file.pem");
    let err = HttpClient::new(Some(&missing)).expect_err("missing extra trust");
    assert!(err.to_string().contains("rampart-no-such-trust-file.pem"), "{err}");
}
