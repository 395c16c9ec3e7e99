//! What the TLS tests share: the certificate a listener serves, and the device key.

use rampart::secrets::Keyring;
use rampart::secrets::file::KeyFile;
use rampart::secrets::keyring::Mint;
use rampart::storage::fs::RealFs;
use rampart::tls::{DEVICE_KEY, KEY_NAME};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The SHA-256 of the certificate `addr` serves in a TLS handshake for `localhost`, which must
/// verify against the PEM certificate `root`.
pub fn served_fingerprint(addr: SocketAddr, root: &Path) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).expect("certificate file") {
        roots.add(cert.expect("certificate")).expect("trusted");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).expect("TLS handshake");
    }
    let served = tls.peer_certificates().and_then(|chain| chain.first()).expect("a certificate");
    ring::digest::digest(&ring::digest::SHA256, served.as_ref()).as_ref().to_vec()
}

/// The SHA-256 of the first certificate of the PEM file `path`.
pub fn file_fingerprint(path: &Path) -> Vec<u8> {
    let cert = CertificateDer::pem_file_iter(path).expect("certificate file").next().expect("one").expect("PEM");
    ring::digest::digest(&ring::digest::SHA256, cert.as_ref()).as_ref().to_vec()
}

/// The device key's DER, opened from `data/device-key.sealed` with the data key the daemon made
/// (the development key-file store).
pub fn device_key_der(data: &Path) -> Vec<u8> {
    let keyring = Keyring::load(&KeyFile, &RealFs, data, Mint::Never);
    let sealed = std::fs::read_to_string(data.join(DEVICE_KEY)).expect("the sealed device key");
    let pem = keyring.open(KEY_NAME, &sealed).expect("it opens with the box's data key").clear;
    PrivateKeyDer::from_pem_slice(&pem).expect("a PEM private key").secret_der().to_vec()
}
