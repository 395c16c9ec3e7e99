//! `rampart check-config` opens the keyring read-only and reports each secret that does not open
//! (an error) and each written in clear, which the next start seals (a warning), without ever
//! printing a value or making a data key.

mod common;

use common::{ConfigDir, rampart};
use rampart::secrets::Keyring;
use rampart::secrets::file::KeyFile;
use rampart::secrets::keyring::Mint;
use rampart::storage::fs::RealFs;

fn check(config: &ConfigDir) -> (bool, String, String) {
    let out = rampart().arg("check-config").arg(config.path()).output().expect("run check-config");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn a_secret_in_clear_is_a_warning_and_one_that_does_not_open_an_error() {
    let config = ConfigDir::loopback("").app("LiveApp", "tokenHashSecret=clear-hash-secret-4d\n");
    let (valid, stdout, stderr) = check(&config);
    assert!(valid, "{stderr}");
    assert!(
        stderr.contains("warning: apps/LiveApp.properties: tokenHashSecret: written in clear: the next start seals it"),
        "{stderr}"
    );
    assert!(!stdout.contains("clear-hash-secret-4d") && !stderr.contains("clear-hash-secret-4d"));
    assert!(!config.file("data/secrets").exists(), "check-config makes no data key");

    let keyring = Keyring::load(&KeyFile, &RealFs, &config.file("data"), Mint::IfNoneOpens);
    let good = keyring.seal("jwtStreamSecretKey", b"stream-secret-0123456789abcdef0123").unwrap();
    // Sealed for another key: it does not open as tokenHashSecret.
    let moved = keyring.seal("jwtSecretKey", b"moved-secret").unwrap();
    let config = config
        .app("LiveApp", &format!("tokenHashSecret={moved}\njwtStreamSecretKey={good}\nplayJwtControlEnabled=true\n"));
    let (valid, stdout, stderr) = check(&config);
    assert!(!valid, "an unopenable secret fails the check: {stderr}");
    assert!(stderr.contains("error: apps/LiveApp.properties: tokenHashSecret: cannot be opened ("), "{stderr}");
    assert!(!stderr.contains("jwtStreamSecretKey"), "a secret that opens is not reported: {stderr}");
    assert!(!stdout.contains("sealed:v1:") && stdout.contains("tokenHashSecret=***"), "{stdout}");
}
