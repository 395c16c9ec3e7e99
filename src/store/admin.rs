//! The panel's admin account: one user, whose password is kept only as a salted
//! PBKDF2-HMAC-SHA256 hash in `admin.json` on the data partition, written through the atomic
//! writer. The first start has no account; the panel asks for one, with the setup code made at
//! that start (printed in the log, kept readable by its owner only in `data.dir/setup-code`), so
//! the first visitor of the panel cannot claim the box.

use super::StoreError;
use crate::storage::writer::AtomicWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

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

/// The admin account, loaded from and kept in the data directory.
pub struct AdminAccount {
    writer: AtomicWriter,
    record: Mutex<Option<Record>>,
    setup_code: Mutex<Option<String>>,
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
        Ok(AdminAccount { writer, record: Mutex::new(record), setup_code: Mutex::default() })
    }

    /// While no account exists: makes the setup code the first password needs, writes it to
    /// `data.dir/setup-code` (mode 0600) and returns it. Blocking: call it off the runtime thread.
    pub fn prepare_setup(&self) -> Result<Option<String>, StoreError> {
        if self.username().is_some() {
            return Ok(None);
        }
        let mut random = [0u8; SETUP_CHARS];
        SystemRandom::new().fill(&mut random).map_err(|_| StoreError::Io("no randomness for the setup code".into()))?;
        let code: String = random.iter().map(|b| char::from(SETUP_ALPHABET[usize::from(b % 32)])).collect();
        let path = self.setup_path();
        let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).map_err(io)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
        file.write_all(format!("{code}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        *self.setup_code.lock().unwrap_or_else(|e| e.into_inner()) = Some(code.clone());
        Ok(Some(code))
    }

    fn setup_path(&self) -> PathBuf {
        self.writer.dir().join(SETUP_FILE)
    }

    /// Whether `presented` is the setup code (compared in constant time; case, spaces and dashes
    /// do not matter).
    fn setup_code_matches(&self, presented: &str) -> bool {
        let presented: String =
            presented.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
        let code = self.setup_code.lock().unwrap_or_else(|e| e.into_inner());
        code.as_deref().is_some_and(|code| crate::secrets::ct_eq(code.as_bytes(), presented.as_bytes()))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Record>> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The admin's user name, once the account exists.
    pub fn username(&self) -> Option<String> {
        self.lock().as_ref().map(|r| r.username.clone())
    }

    /// Creates the account with the setup code of this start, and removes the setup code's
    /// file; refused when one exists, or the code is wrong, or the name or password is unfit.
    /// Blocking: call it off the runtime thread.
    pub fn create(&self, username: &str, password: &str, setup_code: &str) -> Result<(), StoreError> {
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
        *self.setup_code.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match std::fs::remove_file(self.setup_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => log::warn!("{SETUP_FILE} not removed: {e}"),
            _ => {}
        }
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
        let code = account.prepare_setup().unwrap().unwrap();
        let file = dir.path().join(SETUP_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), code);
        assert!(matches!(account.create("admin", "correct horse battery", "WRONG"), Err(StoreError::Refused(_))));
        assert!(matches!(account.create("admin", "correct horse battery", ""), Err(StoreError::Refused(_))));
        account.create("admin", "correct horse battery", &code.to_lowercase()).unwrap();
        assert!(!file.exists(), "the setup code is gone once the account exists");
        assert!(matches!(account.create("admin", "another long password", &code), Err(StoreError::Exists(..))));
        assert_eq!(account.prepare_setup().unwrap(), None);

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
        let code = account.prepare_setup().unwrap().unwrap();
        assert!(matches!(account.create("admin", "short", &code), Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("", "long enough password", &code), Err(StoreError::Unfit(_))));
        assert!(matches!(account.create("a\nb", "long enough password", &code), Err(StoreError::Unfit(_))));
        assert_eq!(account.username(), None);
    }
}
