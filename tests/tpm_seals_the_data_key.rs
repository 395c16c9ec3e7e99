//! The data key sealed by a TPM 2.0 (swtpm): it opens again through the keyring, also after the
//! TPM restarts on the same state, and no transient handle is left behind.

mod common;

use common::swtpm::Swtpm;
use rampart::secrets::keyring::Mint;
use rampart::secrets::tpm::{PcrSelection, Tpm, TpmDevice};
use rampart::secrets::{Keyring, SecretStore};
use rampart::storage::fs::RealFs;

fn store(swtpm: &Swtpm, policy: &str) -> Tpm {
    Tpm::new(TpmDevice::parse(&swtpm.device()).unwrap(), PcrSelection::parse(policy).unwrap())
}

#[test]
fn the_data_key_opens_again_after_the_tpm_restarts() {
    let mut swtpm = Swtpm::fresh();
    let data = tempfile::tempdir().unwrap();
    let first = Keyring::load(&store(&swtpm, ""), &RealFs, data.path(), Mint::IfNoneOpens);
    assert!(first.status().ready && first.status().hardware, "{:?}", first.status());
    let sealed = first.seal("tokenHashSecret", b"hunter2").unwrap();

    // More seals and unseals than swtpm has transient slots (3): each must flush its handles.
    for _ in 0..5 {
        let again = Keyring::load(&store(&swtpm, ""), &RealFs, data.path(), Mint::Never);
        assert!(again.status().problems.is_empty(), "{:?}", again.status());
        assert_eq!(again.open("tokenHashSecret", &sealed).unwrap().clear.as_slice(), b"hunter2");
        store(&swtpm, "").seal(&rampart::secrets::DataKey::generate().unwrap()).unwrap();
    }

    swtpm.restart();
    let restarted = Keyring::load(&store(&swtpm, ""), &RealFs, data.path(), Mint::Never);
    assert!(restarted.status().problems.is_empty(), "{:?}", restarted.status());
    assert_eq!(restarted.open("tokenHashSecret", &sealed).unwrap().clear.as_slice(), b"hunter2");
}
