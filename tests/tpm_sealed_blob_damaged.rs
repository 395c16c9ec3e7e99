//! A sealed data key file cut short or with any byte altered: a clear error each time (never a
//! panic, never a key), and the intact file opens afterwards (nothing left loaded in the TPM).

mod common;

use common::swtpm::Swtpm;
use rampart::secrets::keyring::Mint;
use rampart::secrets::tpm::{PcrSelection, Tpm, TpmDevice};
use rampart::secrets::{KeyError, Keyring, SecretStore};
use rampart::storage::fs::RealFs;

const HEADER: &[u8] = b"rampart datakey v1\n\x03tpm";

#[test]
fn a_truncated_or_altered_blob_is_an_error() {
    let swtpm = Swtpm::fresh();
    let store = Tpm::new(TpmDevice::parse(&swtpm.device()).unwrap(), PcrSelection::parse("sha256:7").unwrap());
    let data = tempfile::tempdir().unwrap();
    let keyring = Keyring::load(&store, &RealFs, data.path(), Mint::IfNoneOpens);
    let sealed = keyring.seal("k", b"v").unwrap();
    let path = data.path().join("secrets/datakey.1");
    let file = std::fs::read(&path).unwrap();
    let blob = file.strip_prefix(HEADER).expect("a tpm data key file");

    for len in 0..blob.len() {
        match store.unseal(&blob[..len]) {
            Err(KeyError::Corrupt(why)) => assert!(why.starts_with("the sealed data key: "), "{why}"),
            other => panic!("{len} bytes: {other:?}"),
        }
    }
    for at in 0..blob.len() {
        let mut altered = blob.to_vec();
        altered[at] ^= 0x41;
        match store.unseal(&altered) {
            // The TPM refuses an altered object (its integrity or a parameter), or our parser does.
            Err(KeyError::Corrupt(why) | KeyError::Refused(why)) => assert!(!why.is_empty()),
            other => panic!("byte {at} altered: {other:?}"),
        }
    }
    std::fs::write(&path, &file[..file.len() - 3]).unwrap();
    let cut = Keyring::load(&store, &RealFs, data.path(), Mint::Never);
    assert!(cut.status().problems[0].contains("corrupt: the sealed data key: truncated"), "{:?}", cut.status());

    std::fs::write(&path, &file).unwrap();
    let intact = Keyring::load(&store, &RealFs, data.path(), Mint::Never);
    assert_eq!(intact.open("k", &sealed).unwrap().clear.as_slice(), b"v");
}
