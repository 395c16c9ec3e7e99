//! Secrets: the redacting [`Secret`] wrapper, the `sealed:v1:` envelope every secret is stored in,
//! the box's data key that opens it ([`Keyring`]), and the stores that seal that key: the TPM 2.0
//! ([`tpm`]) or, on development machines, a key file ([`file`]).
//!
//! The store is asked once at start (a blocking job on the storage worker); every later seal and
//! open is in memory.

pub mod envelope;
pub mod file;
pub mod keyring;
mod secret;
pub mod tpm;

pub use envelope::{DataKey, EnvelopeError};
pub use keyring::{Keyring, KeyringStatus};
pub use secret::{REDACTED, Secret, ct_eq, random_token};

/// Why a store could not seal or unseal the data key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The store cannot be reached (no TPM device, swtpm not listening, no key file yet).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The store refused to open the blob: another TPM made it (the disk was moved), or the
    /// measured boot no longer matches its PCR policy.
    #[error("refused: {0}")]
    Refused(String),
    /// The blob is truncated or malformed, or the store answered nonsense.
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// Seals and unseals the box's data key. Blocking (a TPM command, a file read): call it only
/// from a job on the storage worker, or before the runtime starts.
pub trait SecretStore: Send + Sync {
    /// What the store is, for the log and the system status (`TPM 2.0 at /dev/tpmrm0`).
    fn describe(&self) -> String;
    /// Whether the key is protected by hardware (false for the development key file).
    fn hardware(&self) -> bool;
    /// A short name stored with each blob, so that a blob is only given to the store that made it.
    fn kind(&self) -> &'static str;
    /// Seals `key` for this box: the blob to keep on the data partition.
    fn seal(&self, key: &DataKey) -> Result<Vec<u8>, KeyError>;
    /// Opens a blob [`SecretStore::seal`] made.
    fn unseal(&self, blob: &[u8]) -> Result<DataKey, KeyError>;
}

/// Which store seals the data key (`secrets.store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The TPM when [`tpm::DEFAULT_DEVICE`] exists, else the key file (with a warning).
    Auto,
    /// The TPM at `secrets.tpmDevice`; without it, secrets cannot be opened.
    Tpm,
    /// The development key file.
    File,
}

impl StoreChoice {
    /// Reads `auto`, `tpm` or `file`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(StoreChoice::Auto),
            "tpm" => Ok(StoreChoice::Tpm),
            "file" => Ok(StoreChoice::File),
            _ => Err("expected auto, tpm or file".into()),
        }
    }

    /// The text [`StoreChoice::parse`] reads back.
    pub fn name(&self) -> &'static str {
        match self {
            StoreChoice::Auto => "auto",
            StoreChoice::Tpm => "tpm",
            StoreChoice::File => "file",
        }
    }
}

/// The store `choice` names for the data keys of `data_dir`. `auto` is the TPM when the device
/// `secrets.tpmDevice` names exists (swtpm is taken to exist), or when a data key there was sealed
/// by a TPM (a TPM missing at one boot then leaves the secrets unopenable: it never silently
/// becomes the key file); else the key file. Blocking (it looks at the device and the keys):
/// call it from a job on the storage worker, or before the runtime starts.
pub fn store_for(
    choice: StoreChoice,
    device: &tpm::TpmDevice,
    pcrs: Option<tpm::PcrSelection>,
    fs: &dyn crate::storage::fs::Fs,
    data_dir: &std::path::Path,
) -> Box<dyn SecretStore> {
    let tpm = tpm::Tpm::new(device.clone(), pcrs);
    let tpm_present = match device {
        tpm::TpmDevice::Device(path) => path.exists(),
        tpm::TpmDevice::Swtpm { .. } => true,
    };
    match choice {
        StoreChoice::File => Box::new(file::KeyFile),
        StoreChoice::Auto if !tpm_present && !keyring::holds_keys_of(fs, data_dir, tpm.kind()) => {
            Box::new(file::KeyFile)
        }
        StoreChoice::Auto | StoreChoice::Tpm => Box::new(tpm),
    }
}

/// A secret kept on disk that cannot be opened: what it is, where, and why. The mechanism that
/// needs it refuses (it is never treated as unset); the log and the system status list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unopenable {
    /// Where it is kept (`server.properties`, `apps/LiveApp.properties`, `the datastore of LiveApp`).
    pub place: String,
    /// Which secret (a setting's key, `subscriber s1 of stream cam1`, `the device TLS key`).
    pub key: String,
    /// Why it does not open.
    pub why: String,
}
