//! A sealed device key that does not open (corrupted, or sealed under another box's data key):
//! the daemon starts, the old pair is kept aside, a new device certificate is served over HTTPS,
//! the log says why as an error, and the system status lists the device TLS key.

mod common;

use common::rest::Rest;
use common::tls::{file_fingerprint, served_fingerprint};
use common::{ConfigDir, Daemon, PATIENCE};

#[test]
fn a_corrupted_device_key_is_replaced_by_a_new_certificate_and_reported() {
    let config = ConfigDir::loopback("https.port=0\nsslEnabled=true\n");
    let dir = config.path().to_str().unwrap().to_string();
    let (data, cert) = (config.file("data"), config.file("data/device-cert.pem"));
    let mut first = Daemon::start(&["--config", &dir]);
    let old = served_fingerprint(first.listening("HTTPS"), &cert);
    drop(first);

    let key = data.join("device-key.sealed");
    let sealed = std::fs::read_to_string(&key).expect("the sealed key");
    // One base64 character in the middle of the ciphertext changed: the tag no longer verifies.
    let mut altered = sealed.trim_end().as_bytes().to_vec();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("text");
    std::fs::write(&key, format!("{altered}\n")).expect("write");
    let old_cert = std::fs::read(&cert).expect("cert");

    let mut daemon = Daemon::start(&["--config", &dir]);
    let line = daemon.wait_for("the device TLS key", PATIENCE);
    assert!(line.contains("ERROR") && line.contains("does not open"), "{line}");
    assert!(line.contains("a new device certificate is made"), "{line}");
    let https = daemon.listening("HTTPS");
    let new = served_fingerprint(https, &cert);
    assert_ne!(new, old, "a new certificate");
    assert_eq!(new, file_fingerprint(&cert));
    assert_eq!(std::fs::read_to_string(data.join("device-key.sealed.unopened")).unwrap(), format!("{altered}\n"));
    assert_eq!(std::fs::read(data.join("device-cert.pem.unopened")).unwrap(), old_cert, "the old pair kept aside");

    let code = std::fs::read_to_string(data.join("setup-code")).expect("setup code");
    let mut panel = Rest::new(https).tls(&cert).setup_code(code.trim());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let status = panel.get("/rest/v2/system-status").json();
    let unopenable = status["secrets"]["unopenable"].as_array().expect("a list").clone();
    assert_eq!(unopenable.len(), 1, "{status}");
    assert_eq!(unopenable[0]["key"], "the device TLS key");
    assert_eq!(unopenable[0]["place"], key.display().to_string());
    let why = unopenable[0]["why"].as_str().unwrap();
    assert!(why.contains("does not open") && why.contains("a new device certificate was made"), "{why}");
    assert_eq!(status["secrets"]["store"]["ready"], true);
}
