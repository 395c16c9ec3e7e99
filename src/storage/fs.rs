//! The file-system calls storage makes, behind a trait so that a test can cut the power between
//! any two of them, or make every fsync as slow as a worn SD card's.

use std::io;
use std::path::Path;
use std::sync::Arc;

/// The file-system calls the storage makes, so a test can cut the power between any two of them.
pub trait Fs: Send + Sync {
    /// Creates `path`, which must not exist (O_EXCL), with `bytes` (not yet durable), with the
    /// owner and mode of `like` where that exists, else mode 0600.
    fn create_new(&self, path: &Path, bytes: &[u8], like: &Path) -> io::Result<()>;
    /// Makes the content of `path` durable (fsync).
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` over `to` (atomic, not yet durable).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Reads `path`; `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Appends `bytes` to the existing file `path` (not yet durable).
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Makes the data of `path`, and its length, durable (fdatasync).
    fn sync_data(&self, path: &Path) -> io::Result<()>;
    /// Cuts or extends `path` to `len` bytes (not yet durable).
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Creates `dir` with its missing parents, each readable by its owner only (0700).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
}

/// Opens the character device `path` (a TPM) for reading and writing. Blocking, and a command
/// sent there may take long: for jobs on the storage worker only.
pub fn open_device(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::options().read(true).write(true).open(path)
}

/// Writes `bytes` as `path` (replacing what was there), readable by its owner only, and makes it
/// durable: for the files that are not framed by the atomic writer because people and other
/// programs read them as they are (the setup code, the device certificate and key).
pub fn write_private(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    // Like the temporary file, which does not exist: mode 0600 whatever the old file had.
    let temp = std::path::PathBuf::from(temp);
    replace_durably(fs, path, &temp, bytes, &temp).map_err(|(_, e)| e)
}

/// Replaces `target` with `bytes` through `temp`, in the same directory: a leftover `temp`
/// removed, `temp` created (with the owner and mode of `like`, else 0600) and fsynced, renamed
/// over `target`, the directory fsynced. A power cut leaves the old content or the new, whole.
/// An error names the path it is about.
pub fn replace_durably<F: Fs + ?Sized>(
    fs: &F,
    target: &Path,
    temp: &Path,
    bytes: &[u8],
    like: &Path,
) -> Result<(), (std::path::PathBuf, io::Error)> {
    let at_temp = |e| (temp.to_path_buf(), e);
    if fs.read(temp).map_err(at_temp)?.is_some() {
        fs.remove(temp).map_err(at_temp)?;
    }
    fs.create_new(temp, bytes, like).map_err(at_temp)?;
    fs.sync_file(temp).map_err(at_temp)?;
    fs.rename(temp, target).map_err(|e| (target.to_path_buf(), e))?;
    match target.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => fs.sync_dir(dir).map_err(|e| (dir.to_path_buf(), e)),
        None => Ok(()),
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn create_new(&self, path: &Path, bytes: &[u8], like: &Path) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        match std::fs::metadata(like) {
            Ok(old) => {
                let new = file.metadata()?;
                if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
                    // Only root may give a file away; a daemon that is not keeps it as its own.
                    match std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid())) {
                        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
                        other => other?,
                    }
                }
                // After the chown, which clears set-id bits.
                file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        file.write_all(bytes)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new().write(true).open(path)?.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned())).collect()
    }
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(path)?.write_all(bytes)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new().write(true).open(path)?.sync_data()
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        std::fs::OpenOptions::new().write(true).open(path)?.set_len(len)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
}

impl<F: Fs + ?Sized> Fs for Arc<F> {
    fn create_new(&self, path: &Path, bytes: &[u8], like: &Path) -> io::Result<()> {
        (**self).create_new(path, bytes, like)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        (**self).sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        (**self).sync_dir(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        (**self).remove(path)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        (**self).read(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        (**self).list(dir)
    }
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        (**self).append(path, bytes)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        (**self).sync_data(path)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        (**self).set_len(path, len)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        (**self).create_dir_all(dir)
    }
}

/// What a [`CountingFs`] counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// fsyncs of files and directories, and fdatasyncs.
    pub syncs: u64,
    /// Bytes given to files (created or appended).
    pub bytes_written: u64,
}

/// A file system that counts the syncs and the bytes written through it (benchmarks, tests).
#[derive(Default)]
pub struct CountingFs<F: Fs> {
    inner: F,
    counts: std::sync::Mutex<Counts>,
    only: Option<String>,
}

impl<F: Fs> CountingFs<F> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: F) -> Self {
        CountingFs { inner, counts: std::sync::Mutex::default(), only: None }
    }

    /// Counts only the calls on files whose name starts with `prefix` (no directory syncs).
    pub fn of_files(inner: F, prefix: &str) -> Self {
        CountingFs { only: Some(prefix.to_string()), ..CountingFs::new(inner) }
    }

    /// What was counted so far.
    pub fn counts(&self) -> Counts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, path: &Path, syncs: u64, bytes: usize) {
        let name = path.file_name().map(|n| n.to_string_lossy());
        let counted = self.only.as_ref().is_none_or(|prefix| name.is_some_and(|n| n.starts_with(prefix.as_str())));
        if !counted {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.syncs += syncs;
        counts.bytes_written += bytes as u64;
    }
}

impl<F: Fs> Fs for CountingFs<F> {
    fn create_new(&self, path: &Path, bytes: &[u8], like: &Path) -> io::Result<()> {
        self.count(path, 0, bytes.len());
        self.inner.create_new(path, bytes, like)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.count(path, 1, 0);
        self.inner.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.count(dir, 1, 0);
        self.inner.sync_dir(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.count(path, 0, bytes.len());
        self.inner.append(path, bytes)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.count(path, 1, 0);
        self.inner.sync_data(path)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner.set_len(path, len)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
}
