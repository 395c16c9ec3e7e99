//! A small HTTP/1.1 client for the REST API tests: one request per connection, from a chosen
//! local address (127.0.0.2 to test the CIDR gates), keeping the panel's login cookie and CSRF
//! token like a browser does.

use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A client of one daemon's HTTP listener.
pub struct Rest {
    pub addr: SocketAddr,
    pub from: IpAddr,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The setup code sent with a login (the first password needs it).
    pub setup_code: Option<String>,
    /// With TLS: the connector trusting the daemon's certificate (name `localhost`).
    pub tls: Option<tokio_rustls::TlsConnector>,
}

impl Rest {
    pub fn new(addr: SocketAddr) -> Self {
        Rest {
            addr,
            from: [127, 0, 0, 1].into(),
            cookie: None,
            csrf: None,
            headers: Vec::new(),
            setup_code: None,
            tls: None,
        }
    }

    /// The same client speaking HTTPS, trusting the PEM certificate `root` for `localhost`.
    pub fn tls(mut self, root: &std::path::Path) -> Self {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(root).expect("certificate file") {
            roots.add(cert.expect("certificate")).expect("trusted");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls = Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)));
        self
    }

    /// The same client calling from `ip`.
    pub fn from(mut self, ip: &str) -> Self {
        self.from = ip.parse().expect("address");
        self
    }

    /// Sends the setup code `code` with logins (for the first password).
    pub fn setup_code(mut self, code: &str) -> Self {
        self.setup_code = Some(code.into());
        self
    }

    /// Sends `header: value` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.call("POST", path, Some(body))
    }

    pub fn put(&self, path: &str, body: &str) -> Answer {
        self.call("PUT", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None)
    }

    /// Creates the admin account (first start) or logs in; keeps the cookie and CSRF token.
    pub fn login(&mut self, path: &str, user: &str, password: &str) -> Answer {
        let mut body = serde_json::json!({ "email": user, "password": password });
        if let Some(code) = &self.setup_code {
            body["setupCode"] = code.as_str().into();
        }
        let body = body.to_string();
        let answer = self.post(path, &body);
        if answer.status == 200 {
            let cookie = answer.header("set-cookie").expect("a login sets a cookie");
            self.cookie = Some(cookie.split(';').next().unwrap_or_default().to_string());
            self.csrf = answer.json()["csrfToken"].as_str().map(str::to_string);
        }
        answer
    }

    /// POSTs a body of `content_type`.
    pub fn post_as(&self, path: &str, content_type: &str, body: &str) -> Answer {
        self.send("POST", path, content_type, Some(body))
    }

    /// Sends one request with a JSON body (or none) and reads the whole answer.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.send(method, path, "application/json", body)
    }

    fn send(&self, method: &str, path: &str, content_type: &str, body: Option<&str>) -> Answer {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(cookie) = &self.cookie {
            request += &format!("Cookie: {cookie}\r\n");
        }
        if let Some(csrf) = &self.csrf {
            request += &format!("X-CSRF-Token: {csrf}\r\n");
        }
        for (name, value) in &self.headers {
            request += &format!("{name}: {value}\r\n");
        }
        let body = body.unwrap_or_default();
        request += &format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        self.exchange(request.as_bytes())
    }

    /// Writes `raw` as it is and reads the whole answer.
    pub fn exchange(&self, raw: &[u8]) -> Answer {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let bytes = runtime.block_on(async {
            let socket =
                if self.from.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
            let socket = socket.expect("socket");
            socket.bind(SocketAddr::new(self.from, 0)).expect("bind the client's address");
            let tcp = socket.connect(self.addr).await.expect("connect");
            match &self.tls {
                None => talk(tcp, raw).await,
                Some(connector) => {
                    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
                    talk(connector.connect(name, tcp).await.expect("TLS handshake"), raw).await
                }
            }
        });
        parse(&String::from_utf8_lossy(&bytes))
    }
}

async fn talk(mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin, raw: &[u8]) -> Vec<u8> {
    stream.write_all(raw).await.expect("write");
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), stream.read_to_end(&mut bytes));
    // A TLS peer may close without close_notify once it has answered: what was read counts.
    let _ = read.await.expect("answer within a minute");
    bytes
}

fn parse(text: &str) -> Answer {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    Answer { status, headers, body: body.to_string() }
}
