//! The atomic writer of the read-only configuration partition (and of the datastore files):
//! after a power cut at any moment a file holds either its old or its new content, never a torn,
//! empty or missing one.
//!
//! A write: one writer at a time; if the directory's filesystem is mounted read-only, remount it
//! read-write (and read-only again afterwards, whatever happened); write `.<name>.tmp` with
//! O_EXCL, fsync it, rename it over `<name>`, fsync the directory; then the same for the last
//! good copy `.<name>.good`. Every file starts with a header comment naming a format version, a
//! generation, the body's length and its SHA-256, so the loader tells a file rampart wrote from
//! one edited by hand since (loaded as written, with a warning). A rename cannot leave a file
//! torn halfway: what a power cut leaves is an empty or NUL-filled file (data not yet on disk),
//! and only such a file, or one its reader cannot parse, is torn: the last good copy is used. A
//! file without the header is loaded as written.
//!
//! A file rampart creates is readable by its owner only (0600); a rewrite keeps the owner and
//! mode of the file it replaces, and the good copy takes them from the file.

use super::fs::{Fs, RealFs, replace_durably};
use super::mount::{Remount, RemountGuard};
use ring::digest;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The header's first words; the version after them is [`FORMAT_VERSION`].
const HEADER_PREFIX: &str = "# rampart-file v";
/// The version of the header format.
pub const FORMAT_VERSION: u32 = 1;

/// Why a write or a load failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file-system call failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The partition could not be made writable.
    #[error("cannot remount {} read-write: {source}", .mount.display())]
    Remount {
        /// The mount point.
        mount: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// How a loaded file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Written by rampart and intact.
    Verified,
    /// Has no rampart header: a file written by hand, loaded as it is.
    Unframed,
    /// Its header no longer matches its body: edited by hand, loaded as written with a warning.
    EditedByHand,
    /// The file was torn (empty, NUL-filled or unparsable) or missing; this is the last good copy.
    LastGoodCopy,
}

/// A file's content as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The whole file, header included (a comment line, so properties parse it as it is).
    pub bytes: Vec<u8>,
    /// Where the body starts in `bytes` (after the header line).
    pub body_start: usize,
    /// The generation it was written as (0 when unframed).
    pub generation: u64,
    /// How it was found.
    pub provenance: Provenance,
}

impl LoadedFile {
    /// The content without the header.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(self.body_start..).unwrap_or_default()
    }
}

/// Writes files in one directory atomically and loads them back.
pub struct AtomicWriter<F: Fs = RealFs> {
    dir: PathBuf,
    fs: F,
    remount: Remount,
    one_at_a_time: Mutex<()>,
}

impl AtomicWriter<RealFs> {
    /// A writer for `dir` on the real file system, remounting its partition when read-only.
    pub fn new(dir: &Path) -> Self {
        AtomicWriter::with_fs(dir, RealFs, Remount::for_dir(dir))
    }
}

impl<F: Fs> AtomicWriter<F> {
    /// A writer for `dir` over `fs`, with `remount` deciding what happens around a write.
    pub fn with_fs(dir: &Path, fs: F, remount: Remount) -> Self {
        AtomicWriter { dir: dir.to_path_buf(), fs, remount, one_at_a_time: Mutex::new(()) }
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file system written through.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Writes `body` as `name` with the next generation, and keeps it as the last good copy.
    pub fn write(&self, name: &str, body: &[u8]) -> Result<u64, WriteError> {
        let _one = self.lock();
        let generation = self.load_checked(name, &|_| true)?.map_or(0, |f| f.generation) + 1;
        let framed = frame(body, generation);
        let _writable = self.writable()?;
        self.replace(name, &framed, name)?;
        self.replace(&good_copy(name), &framed, name)?;
        Ok(generation)
    }

    /// Loads `name`: the file if it is usable (intact, unframed, or edited by hand) and `parses`
    /// accepts its body, else its last good copy. `None` when neither exists.
    pub fn load(&self, name: &str, parses: &dyn Fn(&[u8]) -> bool) -> Result<Option<LoadedFile>, WriteError> {
        let _one = self.lock();
        self.load_checked(name, parses)
    }

    /// Removes temporary files a crash left behind (call at start).
    pub fn remove_stale_temps(&self) -> Result<usize, WriteError> {
        let _one = self.lock();
        let names = self.fs.list(&self.dir).map_err(|source| self.io(&self.dir, source))?;
        let stale: Vec<String> = names.into_iter().filter(|n| n.starts_with('.') && n.ends_with(".tmp")).collect();
        if stale.is_empty() {
            return Ok(0);
        }
        let _writable = self.writable()?;
        for name in &stale {
            let path = self.dir.join(name);
            self.fs.remove(&path).map_err(|source| self.io(&path, source))?;
        }
        self.fs.sync_dir(&self.dir).map_err(|source| self.io(&self.dir, source))?;
        Ok(stale.len())
    }

    fn load_checked(&self, name: &str, parses: &dyn Fn(&[u8]) -> bool) -> Result<Option<LoadedFile>, WriteError> {
        let path = self.dir.join(name);
        let main = self.fs.read(&path).map_err(|source| self.io(&path, source))?;
        let file = main.as_deref().and_then(unframe);
        if file.as_ref().is_some_and(|f| parses(f.body())) {
            return Ok(file);
        }
        let good_path = self.dir.join(good_copy(name));
        let good = self.fs.read(&good_path).map_err(|source| self.io(&good_path, source))?;
        Ok(match good.as_deref().and_then(unframe) {
            Some(copy) if copy.provenance == Provenance::Verified && parses(copy.body()) => {
                Some(LoadedFile { provenance: Provenance::LastGoodCopy, ..copy })
            }
            // No good copy: an unparsable file is the caller's to report, and an empty file
            // with no copy beside it was made empty by hand, not torn by a write.
            _ if file.is_some() => file,
            _ if main.as_deref() == Some(&[]) => {
                Some(LoadedFile { bytes: Vec::new(), body_start: 0, generation: 0, provenance: Provenance::Unframed })
            }
            _ => None,
        })
    }

    /// Replaces `name` with `bytes`, with the owner and mode of `like`: temp file, fsync, rename,
    /// fsync of the directory.
    fn replace(&self, name: &str, bytes: &[u8], like: &str) -> Result<(), WriteError> {
        let (target, temp) = (self.dir.join(name), self.dir.join(format!(".{name}.tmp")));
        replace_durably(&self.fs, &target, &temp, bytes, &self.dir.join(like))
            .map_err(|(path, source)| WriteError::Io { path, source })
    }

    fn writable(&self) -> Result<RemountGuard, WriteError> {
        self.remount.writable().map_err(|(mount, source)| WriteError::Remount { mount, source })
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.one_at_a_time.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(&self, path: &Path, source: io::Error) -> WriteError {
        WriteError::Io { path: path.to_path_buf(), source }
    }
}

fn good_copy(name: &str) -> String {
    format!(".{name}.good")
}

/// `body` behind its header line.
fn frame(body: &[u8], generation: u64) -> Vec<u8> {
    let sum = hex(digest::digest(&digest::SHA256, body).as_ref());
    let mut out =
        format!("{HEADER_PREFIX}{FORMAT_VERSION} generation={generation} length={} sha256={sum}\n", body.len())
            .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads a file's header and checks its body; `None` when the file is torn. Only an empty or
/// NUL-filled file is torn (what a power cut leaves of a file whose data had not reached the
/// disk: the files are text); any other is as rampart wrote it, or as someone edited it since.
fn unframe(bytes: &[u8]) -> Option<LoadedFile> {
    if bytes.is_empty() || bytes.contains(&0) {
        return None;
    }
    let unframed =
        || LoadedFile { bytes: bytes.to_vec(), body_start: 0, generation: 0, provenance: Provenance::Unframed };
    let Some(rest) = bytes.strip_prefix(HEADER_PREFIX.as_bytes()) else { return Some(unframed()) };
    let newline = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let (header, body) = (String::from_utf8_lossy(&rest[..newline]), rest.get(newline + 1..).unwrap_or_default());
    let field =
        |name: &str| header.split(' ').find_map(|w| w.strip_prefix(name)?.strip_prefix('=').map(str::to_string));
    let generation = field("generation").and_then(|g| g.parse::<u64>().ok()).unwrap_or(0);
    let length = field("length").and_then(|l| l.parse::<usize>().ok());
    let intact = length == Some(body.len())
        && field("sha256").is_some_and(|sum| hex(digest::digest(&digest::SHA256, body).as_ref()) == sum);
    let provenance = if intact { Provenance::Verified } else { Provenance::EditedByHand };
    let body_start = bytes.len() - body.len();
    Some(LoadedFile { bytes: bytes.to_vec(), body_start, generation, provenance })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
