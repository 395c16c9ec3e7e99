//! The box's data keys, opened once at start from their sealed blobs in `data.dir/secrets/`
//! (`datakey.<n>`), and every later seal and open of a secret, in memory.
//!
//! A key that no longer opens (the disk was moved to another TPM, the PCR policy fails) is kept
//! on disk: moved back, it opens again. When none opens, a new key (the next generation) is
//! made, so that secrets entered again are sealed afresh; values sealed under the old one stay
//! unopenable and are reported as such.

use super::envelope::{DataKey, EnvelopeError};
use super::{KeyError, SecretStore};
use crate::storage::fs::{Fs, write_private};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The directory under `data.dir` that holds the sealed data keys.
pub const DIR: &str = "secrets";
const FILE_PREFIX: &str = "datakey.";
const MAGIC: &[u8] = b"rampart datakey v1\n";

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No data key is open: the store's problems say why.
    #[error("no data key is open ({0})")]
    NoKey(String),
    /// The envelope did not open (or could not be made).
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
}

/// Whether [`Keyring::load`] may make a new data key when none opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mint {
    /// Make one (the daemon's start).
    IfNoneOpens,
    /// Only read (`rampart check-config`).
    Never,
}

/// What the system status shows of the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringStatus {
    /// The store, as it describes itself.
    pub store: String,
    /// Whether the store is hardware (a TPM).
    pub hardware: bool,
    /// Whether a data key is open, so that secrets can be sealed.
    pub ready: bool,
    /// One line for each key that did not open, or could not be made, and why.
    pub problems: Vec<String>,
}

/// A secret opened, and whether it was sealed under an older key than the current one (then it
/// is worth sealing again).
pub struct Opened {
    /// The secret in clear.
    pub clear: Zeroizing<Vec<u8>>,
    /// Sealed under a key older than the one new seals use.
    pub stale: bool,
}

/// The open data keys (oldest first; new seals use the last) and what went wrong with the rest.
pub struct Keyring {
    keys: Vec<DataKey>,
    status: KeyringStatus,
}

impl Keyring {
    /// Opens every data key of `data_dir` with `store`, making a new one when none opens and
    /// `mint` allows. Blocking: the store may be a TPM. Never fails: what went wrong is in
    /// [`Keyring::status`], and every seal and open then says so.
    pub fn load(store: &dyn SecretStore, fs: &dyn Fs, data_dir: &Path, mint: Mint) -> Keyring {
        let dir = data_dir.join(DIR);
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        let mut newest = 0;
        // A store that could not be reached may open its keys at the next start: no new key
        // is made in its place (it would leave secrets entered meanwhile unopenable then).
        let mut unreachable = false;
        for (generation, path) in key_files(fs, &dir, &mut problems) {
            newest = newest.max(generation);
            match read_blob(fs, &path, store.kind()).and_then(|blob| store.unseal(&blob)) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    unreachable |= matches!(e, KeyError::Unavailable(_));
                    problems.push(format!("{}: {e}", path.display()));
                }
            }
        }
        if keys.is_empty() && mint == Mint::IfNoneOpens && !unreachable {
            let Some(next) = newest.checked_add(1) else {
                problems.push(format!("{}: no generation is left for a new data key", dir.display()));
                return Keyring { keys, status: status_of(store, false, problems) };
            };
            let path = dir.join(format!("{FILE_PREFIX}{next}"));
            match make_key(store, fs, &dir, &path) {
                Ok(key) => {
                    log::info!("secrets: made a new data key, sealed by {} ({})", store.describe(), path.display());
                    keys.push(key);
                }
                Err(e) => problems.push(format!("cannot make a data key: {e}")),
            }
        }
        let status = status_of(store, !keys.is_empty(), problems);
        Keyring { keys, status }
    }

    /// A keyring with one fresh key kept nowhere: for what forgets everything at exit (a
    /// datastore in memory) and for tests.
    pub fn ephemeral() -> Keyring {
        let (keys, problems) = match DataKey::generate() {
            Ok(key) => (vec![key], Vec::new()),
            Err(e) => (Vec::new(), vec![format!("cannot make a data key: {e}")]),
        };
        let status = KeyringStatus { store: "memory".into(), hardware: false, ready: !keys.is_empty(), problems };
        Keyring { keys, status }
    }

    /// What the store is and which keys did not open.
    pub fn status(&self) -> &KeyringStatus {
        &self.status
    }

    /// `clear` sealed for `name` under the current key.
    pub fn seal(&self, name: &str, clear: &[u8]) -> Result<String, KeyringError> {
        let key = self.keys.last().ok_or_else(|| self.no_key())?;
        Ok(key.seal(name, clear)?)
    }

    /// The secret `sealed` holds, sealed for `name` under any open key.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Opened, KeyringError> {
        let mut last_error = self.no_key();
        for (age, key) in self.keys.iter().rev().enumerate() {
            match key.open(name, sealed) {
                Ok(clear) => return Ok(Opened { clear, stale: age > 0 }),
                Err(EnvelopeError::DoesNotOpen) => last_error = KeyringError::Envelope(EnvelopeError::DoesNotOpen),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_error)
    }

    fn no_key(&self) -> KeyringError {
        let why = match self.status.problems.as_slice() {
            [] => "no key was made".to_string(),
            problems => problems.join("; "),
        };
        KeyringError::NoKey(why)
    }
}

fn status_of(store: &dyn SecretStore, ready: bool, problems: Vec<String>) -> KeyringStatus {
    KeyringStatus { store: store.describe(), hardware: store.hardware(), ready, problems }
}

/// Whether a data key of `data_dir` was sealed by the `kind` of store. Blocking (it reads them).
pub fn holds_keys_of(fs: &dyn Fs, data_dir: &Path, kind: &str) -> bool {
    let dir = data_dir.join(DIR);
    key_files(fs, &dir, &mut Vec::new()).iter().any(|(_, path)| {
        let bytes = fs.read(path).ok().flatten().unwrap_or_default();
        parse_file(&bytes).is_ok_and(|(made_by, _)| made_by == kind.as_bytes())
    })
}

/// The key files of `dir` with their generations, oldest first.
fn key_files(fs: &dyn Fs, dir: &Path, problems: &mut Vec<String>) -> Vec<(u32, PathBuf)> {
    let names = match fs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            problems.push(format!("{}: cannot list: {e}", dir.display()));
            Vec::new()
        }
    };
    let mut files: Vec<(u32, PathBuf)> =
        names.iter().filter_map(|name| Some((name.strip_prefix(FILE_PREFIX)?.parse().ok()?, dir.join(name)))).collect();
    files.sort();
    files
}

/// The blob in `path`, which `kind` of store must have made.
fn read_blob(fs: &dyn Fs, path: &Path, kind: &str) -> Result<Vec<u8>, KeyError> {
    let bytes = match fs.read(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(KeyError::Unavailable("the file is gone".into())),
        Err(e) => return Err(KeyError::Unavailable(format!("cannot read: {e}"))),
    };
    let (made_by, blob) = parse_file(&bytes)?;
    if made_by != kind.as_bytes() {
        let made_by = String::from_utf8_lossy(made_by);
        return Err(KeyError::Refused(format!("sealed by the {made_by} store, and secrets.store is now {kind}")));
    }
    Ok(blob.to_vec())
}

/// The store kind a data key file names, and its blob.
fn parse_file(bytes: &[u8]) -> Result<(&[u8], &[u8]), KeyError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| KeyError::Corrupt("not a rampart data key file".into()))?;
    let (&len, rest) = rest.split_first().ok_or_else(|| KeyError::Corrupt("truncated".into()))?;
    rest.split_at_checked(usize::from(len)).ok_or_else(|| KeyError::Corrupt("truncated".into()))
}

/// A new key, sealed by `store` and written to `path` (mode 0600, durably).
fn make_key(store: &dyn SecretStore, fs: &dyn Fs, dir: &Path, path: &Path) -> Result<DataKey, KeyError> {
    let key = DataKey::generate().map_err(|e| KeyError::Unavailable(e.to_string()))?;
    let blob = store.seal(&key)?;
    let kind = store.kind().as_bytes();
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAGIC.len() + 1 + kind.len() + blob.len()));
    bytes.extend_from_slice(MAGIC);
    bytes.push(u8::try_from(kind.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(kind);
    bytes.extend_from_slice(&blob);
    let written = fs.create_dir_all(dir).and_then(|()| write_private(fs, path, &bytes));
    written.map_err(|e| KeyError::Unavailable(format!("cannot write {}: {e}", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::file::KeyFile;
    use crate::storage::fs::RealFs;

    #[test]
    fn a_key_is_made_once_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::IfNoneOpens);
        assert!(first.status().ready, "{:?}", first.status());
        let sealed = first.seal("tokenHashSecret", b"hunter2").unwrap();
        let again = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never);
        let opened = again.open("tokenHashSecret", &sealed).unwrap();
        assert_eq!(opened.clear.as_slice(), b"hunter2");
        assert!(!opened.stale);
        assert_eq!(RealFs.list(&dir.path().join(DIR)).unwrap(), vec!["datakey.1".to_string()]);
    }

    #[test]
    fn a_key_that_does_not_open_is_kept_and_a_new_one_made() {
        let dir = tempfile::tempdir().unwrap();
        let old = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::IfNoneOpens);
        let sealed = old.seal("k", b"v").unwrap();
        let path = dir.path().join(DIR).join("datakey.1");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&path, &bytes).unwrap();

        let read_only = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never);
        assert!(!read_only.status().ready);
        assert!(read_only.status().problems[0].contains("datakey.1"), "{:?}", read_only.status());
        assert!(matches!(read_only.seal("k", b"v"), Err(KeyringError::NoKey(_))));

        let new = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::IfNoneOpens);
        assert!(new.status().ready);
        assert_eq!(new.open("k", &sealed).err(), Some(KeyringError::Envelope(EnvelopeError::DoesNotOpen)));
        assert!(dir.path().join(DIR).join("datakey.2").exists());
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the old key is kept as it was");
    }

    #[test]
    fn a_blob_of_another_store_or_a_stranger_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join(DIR);
        std::fs::create_dir_all(&secrets).unwrap();
        let mut other = MAGIC.to_vec();
        other.extend_from_slice(b"\x03tpm0123");
        std::fs::write(secrets.join("datakey.1"), other).unwrap();
        std::fs::write(secrets.join("datakey.2"), b"junk").unwrap();
        std::fs::write(secrets.join("datakey.x"), b"ignored").unwrap();
        let keyring = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never);
        let problems = &keyring.status().problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("sealed by the tpm store"), "{problems:?}");
        assert!(problems[1].contains("not a rampart data key file"), "{problems:?}");
    }
}
