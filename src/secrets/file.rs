//! The development store: the data key kept as it is in its file (mode 0600 in
//! `data.dir/secrets/`), for machines without a TPM. Anyone who reads the data partition reads
//! the key: the daemon warns of it at start.

use super::envelope::DataKey;
use super::{KeyError, SecretStore};

/// The data key in a file of its own, not hardware-protected.
pub struct KeyFile;

impl SecretStore for KeyFile {
    fn describe(&self) -> String {
        "a key file (not hardware-protected)".to_string()
    }

    fn hardware(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn seal(&self, key: &DataKey) -> Result<Vec<u8>, KeyError> {
        Ok(key.bytes().to_vec())
    }

    fn unseal(&self, blob: &[u8]) -> Result<DataKey, KeyError> {
        DataKey::from_bytes(blob).map_err(|e| KeyError::Corrupt(e.to_string()))
    }
}
