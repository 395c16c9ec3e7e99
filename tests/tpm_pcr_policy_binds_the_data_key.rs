//! `secrets.pcrPolicy=sha256:7`: the data key opens while PCR 7 holds what it held at seal, is
//! refused (the policy, named) once PCR 7 is extended, and opens again after a power cycle
//! brings the same measurements back. No policy session is leaked on the refusals.

mod common;

use common::swtpm::Swtpm;
use rampart::secrets::keyring::Mint;
use rampart::secrets::tpm::{PcrSelection, Tpm, TpmDevice};
use rampart::secrets::{Keyring, SecretStore};
use rampart::storage::fs::RealFs;

/// tpm2_policypcr -l sha256:7 on a TPM just started (PCR 7 all zeros).
const PCR7_POLICY: &str = "8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b";

fn store(swtpm: &Swtpm) -> Tpm {
    Tpm::new(TpmDevice::parse(&swtpm.device()).unwrap(), PcrSelection::parse("sha256:7").unwrap())
}

#[test]
fn an_extended_pcr_refuses_the_data_key() {
    let mut swtpm = Swtpm::fresh();
    let data = tempfile::tempdir().unwrap();
    let keyring = Keyring::load(&store(&swtpm), &RealFs, data.path(), Mint::IfNoneOpens);
    assert!(keyring.status().ready, "{:?}", keyring.status());
    assert!(keyring.status().store.contains("bound to PCRs sha256:7"), "{:?}", keyring.status());
    let sealed = keyring.seal("tokenHashSecret", b"hunter2").unwrap();
    // The sealed object's authPolicy is PolicyPCR(sha256:7) at its power-on value, the digest
    // tpm2_policypcr computes for it.
    let file = std::fs::read(data.path().join("secrets/datakey.1")).unwrap();
    let policy: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&PCR7_POLICY[2 * i..2 * i + 2], 16).unwrap()).collect();
    assert!(file.windows(32).any(|w| w == policy), "the PolicyPCR digest is not in the sealed object");
    let opens = Keyring::load(&store(&swtpm), &RealFs, data.path(), Mint::Never);
    assert_eq!(opens.open("tokenHashSecret", &sealed).unwrap().clear.as_slice(), b"hunter2");

    swtpm.extend_pcr(7);
    // More refusals than swtpm has session slots (3): each must flush its policy session.
    for _ in 0..5 {
        let refused = Keyring::load(&store(&swtpm), &RealFs, data.path(), Mint::Never);
        let problems = &refused.status().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("refused: the PCR policy does not match the measured boot")
                && problems[0].contains("Unseal: TPM_RC_POLICY_FAIL"),
            "{problems:?}"
        );
        assert!(refused.open("tokenHashSecret", &sealed).is_err());
    }
    // Another PCR changing does not matter.
    swtpm.restart();
    swtpm.extend_pcr(8);
    let rebooted = Keyring::load(&store(&swtpm), &RealFs, data.path(), Mint::Never);
    assert!(rebooted.status().problems.is_empty(), "{:?}", rebooted.status());
    assert_eq!(rebooted.open("tokenHashSecret", &sealed).unwrap().clear.as_slice(), b"hunter2");

    // A key without a policy still seals and unseals on the same TPM.
    let plain = Tpm::new(TpmDevice::parse(&swtpm.device()).unwrap(), None);
    let key = rampart::secrets::DataKey::generate().unwrap();
    assert_eq!(plain.unseal(&plain.seal(&key).unwrap()).unwrap().bytes(), key.bytes());
}
