//! A TPM that cannot be reached at one start (swtpm stopped, or no /dev/tpmrm0 at one boot) leaves
//! the sealed data key as it is and makes no new one, so that the secrets open again once the TPM
//! is back; with `secrets.store=auto`, a box whose data key a TPM sealed never falls back to the
//! key file.

mod common;

use common::swtpm::Swtpm;
use rampart::secrets::keyring::{DIR, Mint};
use rampart::secrets::tpm::{Tpm, TpmDevice};
use rampart::secrets::{Keyring, StoreChoice, store_for};
use rampart::storage::fs::RealFs;

#[test]
fn an_unreachable_tpm_makes_no_new_key_and_auto_keeps_to_the_tpm() {
    let mut swtpm = Swtpm::fresh();
    let data = tempfile::tempdir().unwrap();
    let device = TpmDevice::parse(&swtpm.device()).unwrap();
    let keyring = Keyring::load(&Tpm::new(device.clone(), None), &RealFs, data.path(), Mint::IfNoneOpens);
    let sealed = keyring.seal("tokenHashSecret", b"hash secret").unwrap();

    let gone = TpmDevice::parse("swtpm:127.0.0.1:1").unwrap();
    let unreachable = Keyring::load(&Tpm::new(gone, None), &RealFs, data.path(), Mint::IfNoneOpens);
    assert!(!unreachable.status().ready, "{:?}", unreachable.status());
    assert!(unreachable.status().problems[0].contains("unavailable"), "{:?}", unreachable.status());
    let files = std::fs::read_dir(data.path().join(DIR)).unwrap().count();
    assert_eq!(files, 1, "no new data key in place of the one the TPM could not open");

    let no_device = TpmDevice::parse("/dev/no-tpm-here").unwrap();
    let chosen = store_for(StoreChoice::Auto, &no_device, None, &RealFs, data.path());
    assert_eq!(chosen.kind(), "tpm", "auto keeps to the TPM that sealed the data key");
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(store_for(StoreChoice::Auto, &no_device, None, &RealFs, fresh.path()).kind(), "file");

    swtpm.restart();
    let device = TpmDevice::parse(&swtpm.device()).unwrap();
    let back = Keyring::load(&Tpm::new(device, None), &RealFs, data.path(), Mint::IfNoneOpens);
    assert_eq!(back.open("tokenHashSecret", &sealed).unwrap().clear.as_slice(), b"hash secret");
}
