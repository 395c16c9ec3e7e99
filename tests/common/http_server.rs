//! A small real HTTP/1.1 (and HTTPS) server on 127.0.0.1 for tests of outbound calls: it reads
//! one request per connection, reports it to the test, and answers as its [`Behavior`] says.
//! The behavior can be replaced while the server runs (a JWKS rotation, an endpoint starting to
//! fail), and the server counts the requests it read, so a test can assert that no call was made.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The size of the body [`Behavior::StreamChunked`] sends: 10 MiB.
pub const HUGE: usize = 10 * 1024 * 1024;

/// A request as the test server saw it.
#[derive(Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("request body is not JSON ({e}): {:?}", self.body))
    }
}

/// What the test server reports back to the test.
#[derive(Debug)]
pub enum Event {
    Request(Received),
    /// The client closed the connection while the server was holding it open.
    PeerClosed,
    /// The server stopped streaming a huge body.
    Streamed {
        completed: bool,
    },
}

/// How the test server answers.
#[derive(Debug)]
pub enum Behavior {
    /// Write these bytes after reading the request, then close.
    Respond(Vec<u8>),
    /// Read the request, never answer, report when the client goes away.
    Hang,
    /// Stream [`HUGE`] bytes of chunked body.
    StreamChunked,
}

/// A complete response with a Content-Length: `status` is the status line's tail ("200 OK"),
/// `extra_headers` whole header lines, each ending in CRLF.
pub fn response(status: &str, extra_headers: &str, body: &[u8]) -> Behavior {
    let mut bytes =
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n", body.len())
            .into_bytes();
    bytes.extend_from_slice(body);
    Behavior::Respond(bytes)
}

/// A JSON response.
pub fn json(status: &str, body: &serde_json::Value) -> Behavior {
    response(status, "Content-Type: application/json\r\n", body.to_string().as_bytes())
}

/// A test server; it stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<Event>,
    behavior: Arc<Mutex<Arc<Behavior>>>,
    requests: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on 127.0.0.1 (an ephemeral port), with TLS if `tls` is given.
    pub async fn start(behavior: Behavior, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, events) = mpsc::unbounded_channel();
        let behavior = Arc::new(Mutex::new(Arc::new(behavior)));
        let requests = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (Arc::clone(&behavior), Arc::clone(&requests));
        let acceptor = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (behavior, counter, tx) = (Arc::clone(&shared), Arc::clone(&counter), tx.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => handle(tcp, &behavior, &counter, &tx).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                handle(stream, &behavior, &counter, &tx).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, events, behavior, requests, acceptor: Some(acceptor) }
    }

    /// A URL of this server.
    pub fn url(&self, scheme: &str, host: &str, path: &str) -> Uri {
        format!("{scheme}://{host}:{}{path}", self.addr.port()).parse().expect("test URL")
    }

    /// Answers the next requests as `behavior` says.
    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(behavior);
    }

    /// How many requests the server has read so far. A request is counted before it is
    /// answered, so once a call returned, its request is in the count.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Closes the listening socket: later connections are refused. Returns once it is closed.
    pub async fn stop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            // The join completes only after the task, and with it the listener, was dropped.
            let _ = acceptor.await;
        }
    }

    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("server event within 5 s")
            .expect("server alive")
    }

    pub async fn request(&mut self) -> Received {
        match self.next().await {
            Event::Request(r) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (it was bound, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    behavior: &Mutex<Arc<Behavior>>,
    requests: &AtomicUsize,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let Some(request) = read_request(&mut s).await else { return };
    requests.fetch_add(1, Ordering::SeqCst);
    let _ = tx.send(Event::Request(request));
    let behavior = Arc::clone(&behavior.lock().unwrap_or_else(|e| e.into_inner()));
    match &*behavior {
        Behavior::Respond(bytes) => {
            let _ = s.write_all(bytes).await;
            let _ = s.shutdown().await;
        }
        Behavior::Hang => {
            let mut scratch = [0u8; 1024];
            while let Ok(n) = s.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(Event::PeerClosed);
        }
        Behavior::StreamChunked => {
            let chunk = vec![b'x'; 16 * 1024];
            let mut completed = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await.is_ok();
            let mut sent = 0;
            while completed && sent < HUGE {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                completed = s.write_all(&frame).await.is_ok();
                sent += chunk.len();
            }
            completed = completed && s.write_all(b"0\r\n\r\n").await.is_ok();
            let _ = tx.send(Event::Streamed { completed });
        }
    }
}

/// Reads one request head plus a Content-Length body; `None` if the client went away first.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Received> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, target) = (start.next()?.to_owned(), start.next()?.to_owned());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let mut request = Received { method, target, headers, body: buf[head_end + 4..].to_vec() };
    let len: usize = request.header("content-length").map_or(Some(0), |v| v.parse().ok())?;
    while request.body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

/// A self-signed certificate for localhost and 127.0.0.1, as a server acceptor and a PEM file to trust.
pub struct TestCert {
    pub acceptor: TlsAcceptor,
    pub pem_file: tempfile::NamedTempFile,
}

pub fn test_cert() -> TestCert {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("rcgen");
    let cert: CertificateDer<'static> = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server cert");
    let mut pem_file = tempfile::NamedTempFile::new().expect("temp file");
    pem_file.write_all(generated.cert.pem().as_bytes()).expect("write PEM");
    TestCert { acceptor: TlsAcceptor::from(Arc::new(config)), pem_file }
}
