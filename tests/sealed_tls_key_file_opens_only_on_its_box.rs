//! `server.tlsKeyFile` may hold a sealed key: on the box whose data key sealed it, HTTPS serves
//! its certificate; on another box (another data key) the daemon starts but serves no HTTPS
//! (never the device certificate in its place), and says which key and why.

mod common;

use common::ConfigDir;
use common::daemon::InProcess;
use common::tls::{file_fingerprint, served_fingerprint};
use rampart::secrets::Keyring;
use rampart::secrets::file::KeyFile;
use rampart::secrets::keyring::Mint;
use rampart::storage::fs::RealFs;
use rampart::tls::KEY_NAME;

/// A box whose server.tlsCertFile and server.tlsKeyFile are `cert` and `key`.
fn with_key(cert: &std::path::Path, key: &std::path::Path) -> ConfigDir {
    let extra = format!(
        "https.port=0\nsslEnabled=true\nserver.tlsCertFile={}\nserver.tlsKeyFile={}\n",
        cert.display(),
        key.display()
    );
    ConfigDir::loopback(&extra).app("LiveApp", "")
}

#[test]
fn a_sealed_key_file_serves_on_its_box_and_is_refused_on_another() {
    let files = tempfile::tempdir().expect("temp dir");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.sealed"));
    std::fs::write(&cert, made.cert.pem()).expect("write");

    let own = with_key(&cert, &key);
    let data = own.file("data");
    let keyring = Keyring::load(&KeyFile, &RealFs, &data, Mint::IfNoneOpens);
    let sealed = keyring.seal(KEY_NAME, made.signing_key.serialize_pem().as_bytes()).expect("sealed");
    std::fs::write(&key, sealed).expect("write");
    let daemon = InProcess::start_in(own);
    assert_eq!(served_fingerprint(daemon.addr("HTTPS"), &cert), file_fingerprint(&cert), "its own box opens it");
    drop(daemon);

    let other = InProcess::start_in(with_key(&cert, &key));
    let protocols: Vec<&str> = other.services.addresses.iter().map(|(protocol, _)| *protocol).collect();
    assert_eq!(protocols, ["RTMP", "HTTP"], "no HTTPS with a key that does not open");
    assert!(!other.config.file("data/device-cert.pem").exists(), "no device certificate in its place");
    // The panel takes no password over plain HTTP with sslEnabled: the status is read in-process.
    let unopenable = other.services.tls_key.clone().expect("the key is reported");
    assert_eq!((unopenable.key.as_str(), unopenable.place), ("server.tlsKeyFile", key.display().to_string()));
    assert!(unopenable.why.contains("RTMPS and HTTPS are not served"), "{}", unopenable.why);
}
