//! A data partition moved to another box: its TPM (a fresh swtpm state, other seeds) refuses the
//! sealed data key, and says why; the box's own TPM still opens it.

mod common;

use common::swtpm::Swtpm;
use rampart::secrets::keyring::Mint;
use rampart::secrets::tpm::{Tpm, TpmDevice};
use rampart::secrets::{KeyError, Keyring, SecretStore};
use rampart::storage::fs::RealFs;

fn store(swtpm: &Swtpm) -> Tpm {
    Tpm::new(TpmDevice::parse(&swtpm.device()).unwrap(), None)
}

#[test]
fn another_tpm_refuses_the_data_key_and_names_the_integrity_failure() {
    let own = Swtpm::fresh();
    let data = tempfile::tempdir().unwrap();
    let keyring = Keyring::load(&store(&own), &RealFs, data.path(), Mint::IfNoneOpens);
    assert!(keyring.status().ready, "{:?}", keyring.status());
    let sealed = keyring.seal("jwtSecretKey", b"a very secret key").unwrap();

    let other = Swtpm::fresh();
    let moved = Keyring::load(&store(&other), &RealFs, data.path(), Mint::Never);
    assert!(!moved.status().ready);
    let problems = &moved.status().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("refused: the sealed data key was made by another TPM")
            && problems[0].contains("Load: TPM_RC_INTEGRITY"),
        "{problems:?}"
    );
    assert!(moved.open("jwtSecretKey", &sealed).is_err());

    // The store's own error, as the log line shows it.
    let blob = std::fs::read(data.path().join("secrets/datakey.1")).unwrap();
    let tpm_blob = &blob[b"rampart datakey v1\n\x03tpm".len()..];
    let error = store(&other).unseal(tpm_blob).unwrap_err();
    assert!(matches!(&error, KeyError::Refused(why) if why.contains("TPM_RC_INTEGRITY")), "{error}");

    let home = Keyring::load(&store(&own), &RealFs, data.path(), Mint::Never);
    assert_eq!(home.open("jwtSecretKey", &sealed).unwrap().clear.as_slice(), b"a very secret key");
}
