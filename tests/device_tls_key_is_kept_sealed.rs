//! The device certificate's private key is kept sealed: nothing in the data directory holds it
//! in clear (no PEM, no base64 of its DER, no DER), and HTTPS serves the same certificate
//! across a restart, the key opened from its sealed file.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::daemon::InProcess;
use common::rest::Rest;
use common::tls::{device_key_der, file_fingerprint, served_fingerprint};
use std::path::Path;

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        match path.is_dir() {
            true => found.extend(files(&path)),
            false => found.push((path.display().to_string(), std::fs::read(&path).expect("read"))),
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn the_device_key_is_sealed_and_the_certificate_kept_across_a_restart() {
    let daemon = InProcess::start("sslEnabled=true\n", "");
    let (data, cert) = (daemon.config.file("data"), daemon.config.file("data/device-cert.pem"));
    let first = served_fingerprint(daemon.addr("HTTPS"), &cert);
    assert_eq!(first, file_fingerprint(&cert), "HTTPS serves the device certificate");
    assert!(!data.join("device-key.pem").exists(), "no clear key file");

    let der = device_key_der(&data);
    let base64 = STANDARD.encode(&der);
    // The PEM's second line: the key's own bytes (the first line is the same for every P-256 key).
    let pem_line = &base64[64..128];
    for (path, bytes) in files(&data) {
        assert!(!contains(&bytes, b"PRIVATE KEY"), "{path} holds a PEM key");
        assert!(!contains(&bytes, base64.as_bytes()), "{path} holds the key's base64");
        assert!(!contains(&bytes, pem_line.as_bytes()), "{path} holds a line of the key's PEM");
        assert!(!contains(&bytes, &der), "{path} holds the key's DER");
    }

    let daemon = daemon.restart();
    assert_eq!(served_fingerprint(daemon.addr("HTTPS"), &cert), first, "the same certificate after a restart");
    let page = Rest::new(daemon.addr("HTTPS")).tls(&cert).get("/");
    assert_eq!(page.status, 200);
    assert_eq!(device_key_der(&daemon.config.file("data")), der, "the same key, sealed");
}
