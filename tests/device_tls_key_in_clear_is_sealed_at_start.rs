//! A device key an older version left in clear (`data.dir/device-key.pem`) is sealed at start
//! and the clear file removed; the device certificate is kept, so HTTPS serves the same one.

mod common;

use common::ConfigDir;
use common::daemon::InProcess;
use common::tls::{device_key_der, file_fingerprint, served_fingerprint};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_clear_device_key_is_sealed_and_removed_and_the_certificate_kept() {
    let config = ConfigDir::loopback("rtmps.port=0\nhttps.port=0\nsslEnabled=true\n").app("LiveApp", "");
    let data = config.file("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("mode");
    let old = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (old.cert.pem(), old.signing_key.serialize_pem());
    std::fs::write(data.join("device-cert.pem"), &cert).expect("write");
    std::fs::write(data.join("device-key.pem"), &key).expect("write");

    let daemon = InProcess::start_in(config);
    assert!(!data.join("device-key.pem").exists(), "the clear key is removed");
    let sealed = std::fs::read_to_string(data.join("device-key.sealed")).expect("the sealed key");
    assert!(sealed.starts_with("sealed:v1:") && !sealed.contains("PRIVATE KEY"), "{sealed}");
    let der = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key").secret_der().to_vec();
    assert_eq!(device_key_der(&data), der, "the same key, sealed");
    assert_eq!(std::fs::read_to_string(data.join("device-cert.pem")).expect("cert"), cert, "the certificate is kept");
    let served = served_fingerprint(daemon.addr("HTTPS"), &data.join("device-cert.pem"));
    assert_eq!(served, file_fingerprint(&data.join("device-cert.pem")));

    let daemon = daemon.restart();
    assert_eq!(served_fingerprint(daemon.addr("HTTPS"), &data.join("device-cert.pem")), served, "and after a restart");
}
