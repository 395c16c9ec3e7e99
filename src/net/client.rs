//! A small outbound HTTP/1.1 client with hard limits, for webhook calls and JWKS fetches.
//!
//! One request per connection (`Connection: close`), no redirects, no pooling. Every call is bounded by a
//! connect timeout, a timeout for the whole exchange and a maximum body size. The hyper connection is driven
//! by a spawned task that is aborted as soon as the call returns or is dropped, so nothing outlives a call.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

/// The bundle read for system roots when `SSL_CERT_FILE` is not set.
const DEFAULT_SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The User-Agent sent with every request.
const USER_AGENT_VALUE: &str = concat!("rampart/", env!("CARGO_PKG_VERSION"));

/// Upper bound of hyper's read buffer (response head plus one body chunk); hyper's minimum is 8 KiB.
const READ_BUF_MAX: usize = 64 * 1024;

/// Longest error detail kept in a `ClientError` message.
const DETAIL_MAX: usize = 160;

/// Bounds of one outbound request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for name resolution plus the TCP connect (all addresses together).
    pub connect_timeout: Duration,
    /// Time allowed for the whole call: connect, TLS, request and the complete response body.
    pub total_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body: usize,
}

/// A response: status and the whole body (at most Limits::max_body bytes).
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The complete response body.
    pub body: Bytes,
}

/// Why a request failed. Display messages are short and contain no URL query strings or bodies.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Name resolution or the TCP connect failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    /// Resolution and TCP connect did not finish within `Limits::connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The whole call did not finish within `Limits::total_timeout`.
    #[error("request timed out")]
    Timeout,
    /// The response body is larger than `Limits::max_body`.
    #[error("response body too large")]
    BodyTooLarge,
    /// The TLS handshake or TLS record layer failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The exchange broke HTTP/1.1 (bad response, connection lost mid-exchange, or an invalid content type).
    #[error("HTTP protocol error: {0}")]
    Protocol(String),
    /// The URL cannot be used (wrong scheme, no host, credentials, ...).
    #[error("bad URL: {0}")]
    BadUrl(&'static str),
}

/// Why the TLS trust configuration could not be built by [`HttpClient::new`].
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The extra trust file is unreadable, not PEM, or holds no usable certificate.
    #[error("trust file {}: {reason}", path.display())]
    File {
        /// The file named as extra trust.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The TLS library refused the configuration.
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// An HTTP(S) client; cheap to clone (the TLS config is shared).
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Trusts the system roots (the file named by SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt; a missing file means no system roots, not an error) plus the PEM certificates in `extra_trust` if given (an unreadable or invalid extra file IS an error, with the path in the message).
    pub fn new(extra_trust: Option<&Path>) -> Result<Self, TrustError> {
        let system = match std::env::var_os("SSL_CERT_FILE") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(DEFAULT_SYSTEM_ROOTS),
        };
        Self::with_trust_files(&system, extra_trust)
    }

    /// Builds the client from an explicit system bundle path (tolerant) and extra trust file (strict).
    fn with_trust_files(system: &Path, extra_trust: Option<&Path>) -> Result<Self, TrustError> {
        let mut roots = RootCertStore::empty();
        add_system_roots(&mut roots, system);
        if let Some(path) = extra_trust {
            add_extra_roots(&mut roots, path)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { tls: Arc::new(config) })
    }

    /// Sends one request and reads the whole response within `limits`.
    pub async fn request(
        &self,
        method: Method,
        url: &Uri,
        body: Option<(&'static str, Bytes)>,
        limits: Limits,
    ) -> Result<Response, ClientError> {
        let target = Target::parse(url)?;
        let request = build_request(method, &target, body)?;
        match tokio::time::timeout(limits.total_timeout, self.exchange(&target, request, limits)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ClientError::Timeout),
        }
    }

    /// Connects, optionally wraps in TLS, and runs the exchange; not time-bounded by itself.
    async fn exchange(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
        limits: Limits,
    ) -> Result<Response, ClientError> {
        let tcp = match tokio::time::timeout(limits.connect_timeout, connect(&target.host, target.port)).await {
            Ok(result) => result?,
            Err(_elapsed) => return Err(ClientError::ConnectTimeout),
        };
        match &target.tls_name {
            None => send(tcp, request, limits.max_body).await,
            Some(name) => {
                let tls = TlsConnector::from(Arc::clone(&self.tls))
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| ClientError::Tls(io_detail(&e)))?;
                send(tls, request, limits.max_body).await
            }
        }
    }
}

/// The parts of a URL the client needs.
#[derive(Debug)]
struct Target {
    /// Host to resolve, without IPv6 brackets.
    host: String,
    /// Port to connect to (explicit or the scheme's default).
    port: u16,
    /// Value of the Host header (the URL's authority).
    host_header: HeaderValue,
    /// Origin-form request target: path plus query.
    path: Uri,
    /// The TLS server name for https, `None` for http.
    tls_name: Option<ServerName<'static>>,
}

impl Target {
    /// Checks the URL and splits it into what the connection and request need.
    fn parse(url: &Uri) -> Result<Self, ClientError> {
        let https = match url.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(_) => return Err(ClientError::BadUrl("scheme must be http or https")),
            None => return Err(ClientError::BadUrl("URL must be absolute")),
        };
        let authority = url.authority().ok_or(ClientError::BadUrl("URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(ClientError::BadUrl("credentials in URL are not supported"));
        }
        let raw_host = authority.host();
        let host = match raw_host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or(ClientError::BadUrl("malformed IPv6 host"))?,
            None => raw_host,
        };
        if host.is_empty() {
            return Err(ClientError::BadUrl("URL has no host"));
        }
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| ClientError::BadUrl("host is not a valid header"))?;
        let path = match url.path_and_query() {
            Some(pq) => {
                let p = if pq.path().is_empty() { "/" } else { pq.path() };
                match pq.query() {
                    Some(q) => format!("{p}?{q}"),
                    None => p.to_owned(),
                }
            }
            None => "/".to_owned(),
        };
        let path = Uri::try_from(path).map_err(|_| ClientError::BadUrl("invalid path"))?;
        let tls_name = if https {
            Some(
                ServerName::try_from(host.to_owned())
                    .map_err(|_| ClientError::BadUrl("host is not a valid TLS name"))?,
            )
        } else {
            None
        };
        Ok(Self { host: host.to_owned(), port, host_header, path, tls_name })
    }
}

/// Builds the request with the fixed header set.
fn build_request(
    method: Method,
    target: &Target,
    body: Option<(&'static str, Bytes)>,
) -> Result<Request<Full<Bytes>>, ClientError> {
    let (content, bytes) = match body {
        Some((content_type, bytes)) => {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| ClientError::Protocol("invalid content type".to_owned()))?;
            (Some((value, bytes.len())), bytes)
        }
        None => (None, Bytes::new()),
    };
    let mut request = Request::new(Full::new(bytes));
    *request.method_mut() = method;
    *request.uri_mut() = target.path.clone();
    let headers = request.headers_mut();
    headers.insert(HOST, target.host_header.clone());
    headers.insert(USER_AGENT, const { HeaderValue::from_static(USER_AGENT_VALUE) });
    headers.insert(CONNECTION, const { HeaderValue::from_static("close") });
    if let Some((content_type, len)) = content {
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(request)
}

/// Resolves `host` and tries its addresses in order; returns the first stream that connects.
async fn connect(host: &str, port: u16) -> Result<TcpStream, ClientError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(ClientError::Connect)?.collect();
    let mut last_err = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Best effort: the request is written in one go, Nagle only adds latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => {
                log::debug!("http client: connect to {addr} failed: {e}");
                last_err = Some(e);
            }
        }
    }
    Err(ClientError::Connect(
        last_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host has no addresses")),
    ))
}

/// Aborts the task driving a hyper connection when dropped, whichever way the call ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs HTTP/1.1 over an established stream: sends the request and reads the bounded response.
async fn send<S>(io: S, request: Request<Full<Bytes>>, max_body: usize) -> Result<Response, ClientError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUF_MAX)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(hyper_error)?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("http client: connection ended with error: {e}");
        }
    }));

    let response = sender.send_request(request).await.map_err(hyper_error)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let declared = body.size_hint().lower();
    if declared > max_body as u64 {
        return Err(ClientError::BodyTooLarge);
    }
    // `declared <= max_body` here, so the preallocation is bounded too.
    let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(hyper_error)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max_body - buf.len() {
                return Err(ClientError::BodyTooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Response { status, body: buf.freeze() })
}

/// Maps a hyper error to `Tls` when a TLS failure lies underneath, else to `Protocol`.
fn hyper_error(e: hyper::Error) -> ClientError {
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return ClientError::Tls(shorten(tls.to_string()));
        }
        if let Some(tls) = cause
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return ClientError::Tls(shorten(tls.to_string()));
        }
        source = cause.source();
    }
    match std::error::Error::source(&e) {
        Some(cause) => ClientError::Protocol(shorten(format!("{e}: {cause}"))),
        None => ClientError::Protocol(shorten(e.to_string())),
    }
}

/// Describes an I/O error from the TLS handshake, preferring the rustls error inside it.
fn io_detail(e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => shorten(tls.to_string()),
        None => shorten(e.to_string()),
    }
}

/// Caps an error detail at `DETAIL_MAX` bytes, cutting on a character boundary.
fn shorten(mut s: String) -> String {
    if s.len() > DETAIL_MAX {
        let mut cut = DETAIL_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Adds the certificates of the system bundle; a missing or partly broken bundle is logged, not fatal.
fn add_system_roots(roots: &mut RootCertStore, path: &Path) {
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::debug!("http client: no system roots at {}", path.display());
            return;
        }
        Err(e) => {
            log::warn!("http client: cannot read system roots {}: {e}", path.display());
            return;
        }
    };
    let mut bad_sections = 0usize;
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(|item| match item {
        Ok(cert) => Some(cert),
        Err(_) => {
            bad_sections += 1;
            None
        }
    });
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if bad_sections > 0 || ignored > 0 {
        log::warn!(
            "http client: system roots {}: {added} added, {ignored} unusable, {bad_sections} malformed PEM sections",
            path.display()
        );
    } else {
        log::debug!("http client: {added} system roots from {}", path.display());
    }
}

/// Adds every certificate of the extra trust file; any problem with it is an error naming the file.
fn add_extra_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), TrustError> {
    let fail = |reason: String| TrustError::File { path: path.to_owned(), reason };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut count = 0usize;
    for item in CertificateDer::pem_slice_iter(&pem) {
        let cert = item.map_err(|e| fail(format!("invalid PEM: {e}")))?;
        roots.add(cert).map_err(|e| fail(format!("invalid certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(fail("no PEM certificate found".to_owned()));
    }
    log::debug!("http client: {count} extra trust anchors from {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target, ClientError> {
        Target::parse(&url.parse::<Uri>().expect("test URL parses"))
    }

    #[test]
    fn urls_are_checked_and_split() {
        let t = target("https://example.com/a/b?x=1").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.path.to_string().as_str()), ("example.com", 443, "/a/b?x=1"));
        assert_eq!(t.host_header, "example.com");
        assert!(t.tls_name.is_some());

        let t = target("http://[::1]:8080").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.path.to_string().as_str()), ("::1", 8080, "/"));
        assert_eq!(t.host_header, "[::1]:8080");
        assert!(t.tls_name.is_none());

        let t = target("HTTPS://10.0.0.1?q").expect("valid");
        assert_eq!((t.port, t.path.to_string().as_str()), (443, "/?q"));
        assert!(matches!(t.tls_name, Some(ServerName::IpAddress(_))));

        for bad in ["ftp://example.com/", "/relative/path", "http://user:pw@example.com/"] {
            assert!(matches!(target(bad), Err(ClientError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn errors_display_short_messages() {
        assert_eq!(ClientError::BadUrl("URL has no host").to_string(), "bad URL: URL has no host");
        let long = shorten("é".repeat(200));
        assert!(long.len() <= DETAIL_MAX + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }

    #[test]
    fn missing_or_garbage_system_roots_are_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        assert!(HttpClient::with_trust_files(&missing, None).is_ok());
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!\n").expect("write");
        assert!(HttpClient::with_trust_files(&garbage, None).is_ok());
    }

    #[test]
    fn bad_extra_trust_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = dir.path().join("none.pem");
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("write");
        for path in [&missing, &empty, &broken] {
            let err = HttpClient::with_trust_files(&none, Some(path)).expect_err("must fail");
            assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        }
    }
}
