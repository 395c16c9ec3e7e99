//! The panel's admin account: one user, whose password is kept only as a salted
//! PBKDF2-HMAC-SHA256 hash in `admin.json` on the data partition, written through the atomic
//! writer. The first start has no account; the panel asks for one.

use super::StoreError;
use crate::config::writer::AtomicWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// PBKDF2 rounds for a new password: about 60 ms on a Cortex-A53, so a login stays quick and a
/// stolen hash stays slow to guess.
pub const ITERATIONS: u32 = 100_000;
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest user name accepted.
pub const MAX_USERNAME_CHARS: usize = 64;

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

/// The admin account, loaded from and kept in the data directory.
pub struct AdminAccount {
    writer: AtomicWriter,
    record: Mutex<Option<Record>>,
}

impl AdminAccount {
    /// The account kept in `data_dir`, if one was created.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let writer = AtomicWriter::new(data_dir);
        let record = match writer
            .load(FILE, &|body| serde_json::from_slice::<Record>(body).is_ok())
            .map_err(|e| StoreError::Io(e.to_string()))?
        {
            Some(file) => Some(
                serde_json::from_slice::<Record>(file.body())
                    .map_err(|e| StoreError::Corrupt(FILE.to_string(), e.to_string()))?,
            ),
            None => None,
        };
        Ok(AdminAccount { writer, record: Mutex::new(record) })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Record>> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The admin's user name, once the account exists.
    pub fn username(&self) -> Option<String> {
        self.lock().as_ref().map(|r| r.username.clone())
    }

    /// Creates the account; refused when one exists, or the name or password is unfit.
    pub fn create(&self, username: &str, password: &str) -> Result<(), StoreError> {
        if username.is_empty()
            || username.chars().count() > MAX_USERNAME_CHARS
            || username.chars().any(char::is_control)
        {
            return Err(StoreError::Unfit("the user name must be 1 to 64 printable characters"));
        }
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StoreError::Unfit("the password must be at least 10 characters"));
        }
        let mut current = self.lock();
        if current.is_some() {
            return Err(StoreError::Exists("admin account", username.to_string()));
        }
        let mut salt = [0u8; SALT_BYTES];
        SystemRandom::new().fill(&mut salt).map_err(|_| StoreError::Io("no randomness for the salt".into()))?;
        let mut hash = [0u8; HASH_BYTES];
        pbkdf2::derive(ALGORITHM, rounds(ITERATIONS), &salt, password.as_bytes(), &mut hash);
        let record = Record {
            username: username.to_string(),
            iterations: ITERATIONS,
            salt_base64: STANDARD.encode(salt),
            hash_base64: STANDARD.encode(hash),
        };
        let body = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Io(e.to_string()))?;
        self.writer.write(FILE, &body).map_err(|e| StoreError::Io(e.to_string()))?;
        *current = Some(record);
        Ok(())
    }

    /// Whether `username` and `password` are the admin's (compared in constant time).
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let Some(record) = self.lock().clone() else { return false };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(&record.salt_base64), STANDARD.decode(&record.hash_base64)) else {
            return false;
        };
        let password_ok =
            pbkdf2::verify(ALGORITHM, rounds(record.iterations), &salt, password.as_bytes(), &hash).is_ok();
        let name_ok = crate::secrets::ct_eq(record.username.as_bytes(), username.as_bytes());
        password_ok & name_ok
    }
}

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;

fn rounds(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_made_once_and_checked_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let account = AdminAccount::open(dir.path()).unwrap();
        assert_eq!(account.username(), None);
        assert!(!account.verify("admin", "anything at all"));
        account.create("admin", "correct horse battery").unwrap();
        assert!(matches!(account.create("admin", "another long password"), Err(StoreError::Exists(..))));

        let reopened = AdminAccount::open(dir.path()).unwrap();
        assert_eq!(reopened.username().as_deref(), Some("admin"));
        assert!(reopened.verify("admin", "correct horse battery"));
        assert!(!reopened.verify("admin", "correct horse batterY"));
        assert!(!reopened.verify("root", "correct horse battery"));
        let file = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!file.contains("correct horse"), "only the hash is kept");
    }

    #[test]
    fn unfit_names_and_passwords_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let account = AdminAccount::open(dir.path()).unwrap();
        assert!(matches!(account.create("admin", "short"), Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("", "long enough password"), Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("a\nb", "long enough password"), Err(StoreError::Unfit(_))));
        assert_eq!(account.username(), None);
    }
}
