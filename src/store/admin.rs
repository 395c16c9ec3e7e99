//! The panel's admin account: one user, whose password is kept only as a salted
//! PBKDF2-HMAC-SHA256 hash in `admin.json` on the data partition, written through the atomic
//! writer. The first start has no account; the panel asks for one, with the setup code made at
//! that start (printed in the log, kept readable by its owner only in `data.dir/setup-code`), so
//! the first visitor of the panel cannot claim the box.

use super::StoreError;
use crate::storage::Storage;
use crate::storage::fs::{Fs, write_private};
use crate::storage::mount::Remount;
use crate::storage::writer::AtomicWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// PBKDF2 rounds for a new password: about 60 ms on a Cortex-A53, so a login stays quick and a
/// stolen hash stays slow to guess.
pub const ITERATIONS: u32 = 100_000;
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest user name accepted.
pub const MAX_USERNAME_CHARS: usize = 64;

/// The file in data.dir holding the setup code while no account exists.
pub const SETUP_FILE: &str = "setup-code";
/// Characters of a setup code (from an alphabet without look-alikes: 60 bits).
const SETUP_CHARS: usize = 12;
const SETUP_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

const FILE: &str = "admin.json";
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// The stored account.
#[derive(Serialize, Deserialize, Clone)]
struct Record {
    username: String,
    iterations: u32,
    salt_base64: String,
    hash_base64: String,
}

impl Record {
    /// The record of `username` with a fresh salt and the hash of `password` (CPU-heavy).
    fn hashed(username: &str, password: &str) -> Result<Self, StoreError> {
        let mut salt = [0u8; SALT_BYTES];
        SystemRandom::new().fill(&mut salt).map_err(|_| StoreError::Io("no randomness for the salt".into()))?;
        let mut hash = [0u8; HASH_BYTES];
        pbkdf2::derive(ALGORITHM, rounds(ITERATIONS), &salt, password.as_bytes(), &mut hash);
        Ok(Record {
            username: username.to_string(),
            iterations: ITERATIONS,
            salt_base64: STANDARD.encode(salt),
            hash_base64: STANDARD.encode(hash),
        })
    }

    /// Whether `username` and `password` are this account's (constant time; CPU-heavy).
    fn matches(&self, username: &str, password: &str) -> bool {
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(&self.salt_base64), STANDARD.decode(&self.hash_base64)) else {
            return false;
        };
        let password_ok = pbkdf2::verify(ALGORITHM, rounds(self.iterations), &salt, password.as_bytes(), &hash).is_ok();
        let name_ok = crate::secrets::ct_eq(self.username.as_bytes(), username.as_bytes());
        password_ok & name_ok
    }
}

/// The admin account, loaded from and kept in the data directory. Its files are read and
/// written by jobs on the storage worker; its password hashes are made and checked on tokio's
/// blocking threads, so that a login's 60 ms of PBKDF2 never waits behind an fsync, nor delays
/// the durable writes queued on the worker.
pub struct AdminAccount {
    storage: Storage,
    /// What the worker's jobs reach.
    kept: Arc<Kept>,
}

/// The account's files and what is known of them. The creating job checks and sets the record
/// on the worker, whose order makes two creations one after the other, and whose job completes
/// even when the caller went away.
struct Kept {
    writer: AtomicWriter<Arc<dyn Fs>>,
    record: Mutex<Option<Record>>,
    setup_code: Mutex<Option<String>>,
}

impl Kept {
    fn lock(&self) -> MutexGuard<'_, Option<Record>> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn setup_path(&self) -> PathBuf {
        self.writer.dir().join(SETUP_FILE)
    }

    /// Keeps `record` as the account unless one exists, and removes the setup code (blocking:
    /// a job on the worker, whose order keeps the check and the write together; the record's
    /// lock is not held across the write, so readers of the account never wait for it).
    fn keep(&self, record: Record, fs: &dyn Fs) -> Result<(), StoreError> {
        if self.lock().is_some() {
            return Err(StoreError::Exists("admin account", record.username));
        }
        let body = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Io(e.to_string()))?;
        self.writer.write(FILE, &body).map_err(|e| StoreError::Io(e.to_string()))?;
        *self.lock() = Some(record);
        *self.setup_code.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match fs.remove(&self.setup_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => log::warn!("{SETUP_FILE} not removed: {e}"),
            _ => {}
        }
        Ok(())
    }
}

fn stopped(e: crate::storage::StorageError) -> StoreError {
    StoreError::Io(e.to_string())
}

impl AdminAccount {
    /// The account kept in `data_dir`, if one was created (read on the storage worker).
    pub async fn open(data_dir: &Path, storage: Storage) -> Result<Self, StoreError> {
        let (dir, fs) = (data_dir.to_path_buf(), storage.fs());
        let (writer, record) = storage
            .run(move || {
                let writer = AtomicWriter::with_fs(&dir, fs, Remount::for_dir(&dir));
                load(&writer).map(|record| (writer, record))
            })
            .await
            .map_err(stopped)??;
        let kept = Kept { writer, record: Mutex::new(record), setup_code: Mutex::default() };
        Ok(AdminAccount { storage, kept: Arc::new(kept) })
    }

    /// While no account exists: makes the setup code the first password needs, writes it to
    /// `data.dir/setup-code` (mode 0600, on the storage worker) and returns it.
    pub async fn prepare_setup(&self) -> Result<Option<String>, StoreError> {
        if self.username().is_some() {
            return Ok(None);
        }
        let mut random = [0u8; SETUP_CHARS];
        SystemRandom::new().fill(&mut random).map_err(|_| StoreError::Io("no randomness for the setup code".into()))?;
        let code: String = random.iter().map(|b| char::from(SETUP_ALPHABET[usize::from(b % 32)])).collect();
        let (fs, path, line) = (self.storage.fs(), self.kept.setup_path(), format!("{code}\n"));
        self.storage
            .run(move || {
                write_private(fs.as_ref(), &path, line.as_bytes())
                    .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))
            })
            .await
            .map_err(stopped)??;
        *self.kept.setup_code.lock().unwrap_or_else(|e| e.into_inner()) = Some(code.clone());
        Ok(Some(code))
    }

    /// Whether `presented` is the setup code (compared in constant time; case, spaces and dashes
    /// do not matter).
    fn setup_code_matches(&self, presented: &str) -> bool {
        let presented: String =
            presented.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
        let code = self.kept.setup_code.lock().unwrap_or_else(|e| e.into_inner());
        code.as_deref().is_some_and(|code| crate::secrets::ct_eq(code.as_bytes(), presented.as_bytes()))
    }

    /// The admin's user name, once the account exists.
    pub fn username(&self) -> Option<String> {
        self.kept.lock().as_ref().map(|r| r.username.clone())
    }

    /// Creates the account with the setup code of this start, and removes the setup code's
    /// file; refused when one exists, or the code is wrong, or the name or password is unfit.
    /// The hash is made on a blocking thread, the files are written on the storage worker.
    pub async fn create(&self, username: &str, password: &str, setup_code: &str) -> Result<(), StoreError> {
        if self.username().is_some() {
            return Err(StoreError::Exists("admin account", username.to_string()));
        }
        if !self.setup_code_matches(setup_code) {
            return Err(StoreError::Refused(
                "the setup code is missing or wrong: it is in the daemon's log and in data.dir/setup-code",
            ));
        }
        if username.is_empty()
            || username.chars().count() > MAX_USERNAME_CHARS
            || username.chars().any(char::is_control)
        {
            return Err(StoreError::Unfit("the user name must be 1 to 64 printable characters"));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StoreError::Unfit("the password must be at least 10 characters"));
        }
        let (name, secret) = (username.to_string(), password.to_string());
        let record = tokio::task::spawn_blocking(move || Record::hashed(&name, &secret))
            .await
            .unwrap_or_else(|_| Err(StoreError::Io("the password hash could not be made".into())))?;
        let (kept, fs) = (self.kept.clone(), self.storage.fs());
        self.storage.run(move || kept.keep(record, fs.as_ref())).await.map_err(stopped)?
    }

    /// Whether `username` and `password` are the admin's (compared in constant time, on a
    /// blocking thread).
    pub async fn verify(&self, username: &str, password: &str) -> bool {
        let Some(record) = self.kept.lock().clone() else { return false };
        let (name, secret) = (username.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || record.matches(&name, &secret)).await.unwrap_or(false)
    }
}

/// The account in `writer`'s directory, if one was created.
fn load(writer: &AtomicWriter<Arc<dyn Fs>>) -> Result<Option<Record>, StoreError> {
    let parses = |body: &[u8]| serde_json::from_slice::<Record>(body).is_ok();
    match writer.load(FILE, &parses).map_err(|e| StoreError::Io(e.to_string()))? {
        Some(file) => serde_json::from_slice::<Record>(file.body())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(FILE.to_string(), e.to_string())),
        None => Ok(None),
    }
}

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;

fn rounds(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> Storage {
        Storage::start(Arc::new(crate::storage::fs::RealFs)).unwrap()
    }

    #[tokio::test]
    async fn the_account_is_made_once_and_checked_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let account = AdminAccount::open(dir.path(), storage()).await.unwrap();
        assert_eq!(account.username(), None);
        assert!(!account.verify("admin", "anything at all").await);
        let code = account.prepare_setup().await.unwrap().unwrap();
        let file = dir.path().join(SETUP_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), code);
        assert!(matches!(account.create("admin", "correct horse battery", "WRONG").await, Err(StoreError::Refused(_))));
        assert!(matches!(account.create("admin", "correct horse battery", "").await, Err(StoreError::Refused(_))));
        account.create("admin", "correct horse battery", &code.to_lowercase()).await.unwrap();
        assert!(!file.exists(), "the setup code is gone once the account exists");
        assert!(matches!(account.create("admin", "another long password", &code).await, Err(StoreError::Exists(..))));
        assert_eq!(account.prepare_setup().await.unwrap(), None);

        let reopened = AdminAccount::open(dir.path(), storage()).await.unwrap();
        assert_eq!(reopened.username().as_deref(), Some("admin"));
        assert!(reopened.verify("admin", "correct horse battery").await);
        assert!(!reopened.verify("admin", "correct horse batterY").await);
        assert!(!reopened.verify("root", "correct horse battery").await);
        let file = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!file.contains("correct horse"), "only the hash is kept");
    }

    #[tokio::test]
    async fn unfit_names_and_passwords_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let account = AdminAccount::open(dir.path(), storage()).await.unwrap();
        let code = account.prepare_setup().await.unwrap().unwrap();
        assert!(matches!(account.create("admin", "short", &code).await, Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("", "long enough password", &code).await, Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("a\nb", "long enough password", &code).await, Err(StoreError::Unfit(_))));
        assert_eq!(account.username(), None);
    }
}
