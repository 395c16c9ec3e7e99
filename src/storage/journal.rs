//! An append-only journal of records beside a snapshot, for stores that change a little at a
//! time (the datastore: one consumed one-time token is one small record, not a rewrite of every
//! token).
//!
//! The journal file starts with a header (magic, version, epoch); each record after it is its
//! length (u32, little-endian), the first 8 bytes of the SHA-256 of length and payload, and the
//! payload. What a power cut leaves past the last fdatasync (a partial record, zeros, garbage) is
//! found at load by the first record that does not check, cut off, and the file truncated to its
//! valid length before anything is appended again.
//!
//! Appends group-commit: they queue up, and one flush job on the storage worker writes every
//! queued record with one write and one fdatasync, then answers each; an append resolves only
//! once its record is durable. A record's change is applied (a closure the caller gives) on the
//! worker right after its fdatasync, so the state in memory is always what the journal holds, in
//! journal order, and a compaction snapshots exactly that.
//!
//! Compaction, once the journal is past [`COMPACT_AFTER_BYTES`]: the state is written as the
//! snapshot through the [`AtomicWriter`] (whose generation is the snapshot's epoch), then a fresh
//! journal of that epoch replaces the old one (temp file, fsync, rename, fsync of the directory).
//! At load a journal older than its snapshot is ignored (its records are in the snapshot), and a
//! snapshot without a journal (a store written by whole-file rewrites before) starts one.

use super::fs::{Fs, replace_durably};
use super::mount::Remount;
use super::writer::{AtomicWriter, LoadedFile, WriteError};
use super::{Storage, StorageError};
use ring::digest;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The journal file's first bytes.
const MAGIC: &[u8; 8] = b"rampartJ";
/// The version of the journal's format.
const VERSION: u32 = 1;
/// Magic, version and epoch.
const HEADER_LEN: usize = 20;
/// A record's length and checksum.
const RECORD_HEAD: usize = 12;
/// Largest record payload.
pub const MAX_RECORD: usize = 1 << 20;
/// Journal length past which it is compacted into the snapshot.
pub const COMPACT_AFTER_BYTES: u64 = 64 * 1024;

/// Why the journal could not be loaded or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// A file-system call failed.
    #[error("{0}")]
    Io(String),
    /// The storage worker did not run the job.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file is not what rampart wrote.
    #[error("{name}: {why}")]
    Corrupt {
        /// The file.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// A record is empty or larger than [`MAX_RECORD`].
    #[error("a journal record must have 1 to {MAX_RECORD} bytes, not {0}")]
    RecordSize(usize),
}

impl From<WriteError> for JournalError {
    fn from(e: WriteError) -> Self {
        JournalError::Io(e.to_string())
    }
}

/// The file names of one journaled store, in one directory.
#[derive(Debug, Clone)]
pub struct Names {
    /// The snapshot, written through the atomic writer.
    pub snapshot: String,
    /// The journal of records since the snapshot.
    pub journal: String,
}

/// What an open found on disk.
#[derive(Debug)]
pub struct Loaded {
    /// The snapshot, if there is one.
    pub snapshot: Option<LoadedFile>,
    /// The journal's records since the snapshot, oldest first.
    pub records: Vec<Vec<u8>>,
    /// Bytes of a torn tail cut off the journal.
    pub torn_bytes: usize,
}

/// What the file may hold past its durable length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Nothing.
    Clean,
    /// Bytes of a write that failed: cut before the next append.
    Dirty,
    /// A snapshot of this epoch was written: the journal must start afresh before any append.
    Stale(u64),
}

/// The journal's file on one thread (the storage worker's), blocking.
pub struct JournalFile<F: Fs> {
    writer: AtomicWriter<F>,
    names: Names,
    path: PathBuf,
    epoch: u64,
    len: u64,
    health: Health,
    compact_after: u64,
}

impl<F: Fs> JournalFile<F> {
    /// Loads the snapshot and the journal after it through `writer` (`parses` says whether a
    /// snapshot body is usable), cuts a torn tail off the journal, and starts a journal where
    /// none is current. Compacts once the journal is past `compact_after` bytes.
    pub fn open(
        writer: AtomicWriter<F>,
        names: Names,
        parses: &dyn Fn(&[u8]) -> bool,
        compact_after: u64,
    ) -> Result<(Self, Loaded), JournalError> {
        writer.remove_stale_temps()?;
        let snapshot = writer.load(&names.snapshot, parses)?;
        let epoch = snapshot.as_ref().map_or(0, |s| s.generation);
        let path = writer.dir().join(&names.journal);
        let mut file = JournalFile { writer, names, path, epoch, len: 0, health: Health::Clean, compact_after };
        let (records, torn_bytes) = match file.fs().read(&file.path).map_err(|e| file.io(e))? {
            None => (file.start_afresh(epoch)?, 0),
            Some(bytes) => match header_epoch(&bytes) {
                None => return Err(file.corrupt("not a rampart journal".into())),
                Some(older) if older < epoch => {
                    if bytes.len() > HEADER_LEN {
                        log::warn!("{}: older than its snapshot, whose records it holds; ignored", file.path.display());
                    }
                    (file.start_afresh(epoch)?, 0)
                }
                Some(newer) if newer > epoch => {
                    let why = format!("journal of epoch {newer}, but its snapshot is of epoch {epoch}");
                    return Err(file.corrupt(why));
                }
                Some(_) => file.replay(&bytes)?,
            },
        };
        Ok((file, Loaded { snapshot, records, torn_bytes }))
    }

    /// The records of `bytes`, a current journal, up to the first that does not check; that and
    /// what follows it is cut off, durably.
    fn replay(&mut self, bytes: &[u8]) -> Result<(Vec<Vec<u8>>, usize), JournalError> {
        let (records, valid) = records(bytes.get(HEADER_LEN..).unwrap_or_default());
        let valid = HEADER_LEN + valid;
        self.len = valid as u64;
        let torn = bytes.len() - valid;
        if torn > 0 {
            self.fs().set_len(&self.path, self.len).map_err(|e| self.io(e))?;
            self.fs().sync_data(&self.path).map_err(|e| self.io(e))?;
        }
        Ok((records, torn))
    }

    /// Appends `frames` (records made by [`frame`]) and makes them durable with one fdatasync.
    pub fn write(&mut self, frames: &[u8]) -> Result<(), JournalError> {
        if let Health::Stale(epoch) = self.health {
            self.start_afresh(epoch)?;
        }
        if self.health == Health::Dirty {
            self.fs().set_len(&self.path, self.len).map_err(|e| self.io(e))?;
            self.health = Health::Clean;
        }
        let written = self.fs().append(&self.path, frames).and_then(|()| self.fs().sync_data(&self.path));
        if let Err(e) = written {
            self.health = Health::Dirty;
            return Err(self.io(e));
        }
        self.len += frames.len() as u64;
        Ok(())
    }

    /// Whether the journal is past its bound.
    pub fn wants_compaction(&self) -> bool {
        self.len > self.compact_after
    }

    /// Writes `snapshot` (the state with every record so far) and starts a fresh journal.
    pub fn compact(&mut self, snapshot: &[u8]) -> Result<(), JournalError> {
        let epoch = match self.writer.write(&self.names.snapshot, snapshot) {
            Ok(epoch) => epoch,
            Err(e) => {
                // A write can fail after its rename (the directory's fsync, the good copy): then
                // the new snapshot is in force on disk, and the journal must start afresh at its
                // epoch before the next append, or the next load would ignore what follows.
                if let Ok(Some(on_disk)) = self.writer.load(&self.names.snapshot, &|_| true) {
                    if on_disk.generation > self.epoch {
                        self.health = Health::Stale(on_disk.generation);
                    }
                }
                return Err(e.into());
            }
        };
        if epoch <= self.epoch {
            // Only a snapshot file replaced by hand with a lower generation gets here.
            return Err(self.corrupt(format!("snapshot written as epoch {epoch}, not past {}", self.epoch)));
        }
        self.health = Health::Stale(epoch);
        self.start_afresh(epoch).map(drop)
    }

    /// Replaces the journal with an empty one of `epoch`, atomically; no records.
    fn start_afresh(&mut self, epoch: u64) -> Result<Vec<Vec<u8>>, JournalError> {
        let temp = self.writer.dir().join(format!(".{}.tmp", self.names.journal));
        let made = replace_durably(self.fs(), &self.path, &temp, &header(epoch), &self.path).map_err(|(_, e)| e);
        made.map_err(|e| self.io(e))?;
        (self.epoch, self.len, self.health) = (epoch, HEADER_LEN as u64, Health::Clean);
        Ok(Vec::new())
    }

    fn fs(&self) -> &F {
        self.writer.fs()
    }

    fn io(&self, e: std::io::Error) -> JournalError {
        JournalError::Io(format!("{}: {e}", self.path.display()))
    }

    fn corrupt(&self, why: String) -> JournalError {
        JournalError::Corrupt { name: self.names.journal.clone(), why }
    }
}

fn header(epoch: u64) -> Vec<u8> {
    [&MAGIC[..], &VERSION.to_le_bytes(), &epoch.to_le_bytes()].concat()
}

/// The epoch of a journal file; `None` when it is not one.
fn header_epoch(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_prefix(&MAGIC[..])?.strip_prefix(&VERSION.to_le_bytes()[..])?;
    Some(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?))
}

fn checksum(len: u32, payload: &[u8]) -> [u8; 8] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(&len.to_le_bytes());
    context.update(payload);
    let mut sum = [0; 8];
    sum.copy_from_slice(&context.finish().as_ref()[..8]);
    sum
}

/// `payload` as a journal record.
pub fn frame(payload: &[u8]) -> Result<Vec<u8>, JournalError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| (1..=MAX_RECORD as u32).contains(len))
        .ok_or(JournalError::RecordSize(payload.len()))?;
    Ok([&len.to_le_bytes()[..], &checksum(len, payload), payload].concat())
}

/// The records at the start of `bytes` that check, and the length they take.
fn records(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some((payload, next)) = record_at(bytes, at) {
        records.push(payload.to_vec());
        at = next;
    }
    (records, at)
}

/// The record at `at` and where the next starts, if it is whole and checks.
fn record_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(at..at.checked_add(RECORD_HEAD)?)?;
    let len = u32::from_le_bytes(head.get(..4)?.try_into().ok()?);
    if len == 0 || len as usize > MAX_RECORD {
        return None;
    }
    let start = at + RECORD_HEAD;
    let end = start.checked_add(len as usize)?;
    let payload = bytes.get(start..end)?;
    (head.get(4..)? == checksum(len, payload)).then_some((payload, end))
}

/// A change applied once its record is durable.
type Apply = Box<dyn FnOnce() + Send>;
/// The whole state as a snapshot body, for a compaction.
pub type Snapshot = Box<dyn Fn() -> Vec<u8> + Send + Sync>;

struct Waiting {
    frame: Vec<u8>,
    apply: Apply,
    done: oneshot::Sender<Result<(), JournalError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    flush_queued: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    file: Mutex<JournalFile<Arc<dyn Fs>>>,
    snapshot: Snapshot,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&self) -> MutexGuard<'_, JournalFile<Arc<dyn Fs>>> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes every queued record with one fdatasync, applies them, answers each, and compacts
    /// when the journal has grown past its bound (on the storage worker).
    fn flush(&self) {
        let batch = {
            let mut queue = self.queue();
            queue.flush_queued = false;
            std::mem::take(&mut queue.waiting)
        };
        if batch.is_empty() {
            return;
        }
        let frames: Vec<u8> = batch.iter().flat_map(|w| w.frame.iter().copied()).collect();
        let mut file = self.file();
        match file.write(&frames) {
            Ok(()) => {
                for waiting in batch {
                    (waiting.apply)();
                    let _ = waiting.done.send(Ok(()));
                }
            }
            Err(e) => {
                log::error!("{} records not written to the journal: {e}", batch.len());
                batch.into_iter().for_each(|w| drop(w.done.send(Err(e.clone()))));
                return;
            }
        }
        if file.wants_compaction() {
            let body = (self.snapshot)();
            if let Err(e) = file.compact(&body) {
                log::warn!("journal not compacted (appends go on): {e}");
            }
        }
    }

    /// Answers everything queued with `error` (a flush job that will not run).
    fn fail_waiting(&self, error: JournalError) {
        let waiting = {
            let mut queue = self.queue();
            queue.flush_queued = false;
            std::mem::take(&mut queue.waiting)
        };
        waiting.into_iter().for_each(|w| drop(w.done.send(Err(error.clone()))));
    }
}

/// A flush job; dropped without running (the worker stopped, the queuing future was dropped),
/// it answers what was waiting for it.
struct FlushJob(Option<Arc<Shared>>);

impl FlushJob {
    fn run(mut self) {
        if let Some(shared) = self.0.take() {
            shared.flush();
        }
    }
}

impl Drop for FlushJob {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.fail_waiting(JournalError::Storage(StorageError::Stopped));
        }
    }
}

/// A journaled store's files on the storage worker, with group commit.
#[derive(Clone)]
pub struct Journal {
    storage: Storage,
    shared: Arc<Shared>,
}

impl Journal {
    /// Opens the store `names` in `dir` on the storage worker (see [`JournalFile::open`]);
    /// `snapshot` makes the body of a compaction's snapshot.
    pub async fn open(
        storage: &Storage,
        dir: &Path,
        names: Names,
        parses: impl Fn(&[u8]) -> bool + Send + 'static,
        snapshot: Snapshot,
    ) -> Result<(Journal, Loaded), JournalError> {
        let (fs, dir) = (storage.fs(), dir.to_path_buf());
        let (file, loaded) = storage
            .run(move || {
                let writer = AtomicWriter::with_fs(&dir, fs, Remount::for_dir(&dir));
                JournalFile::open(writer, names, &parses, COMPACT_AFTER_BYTES)
            })
            .await??;
        let shared = Arc::new(Shared { queue: Mutex::default(), file: Mutex::new(file), snapshot });
        Ok((Journal { storage: storage.clone(), shared }, loaded))
    }

    /// Appends `record` and resolves once it is durable, after `apply` ran (on the storage
    /// worker, in journal order). Records appended close together share one fdatasync. On an
    /// error `apply` does not run.
    pub async fn append(&self, record: &[u8], apply: impl FnOnce() + Send + 'static) -> Result<(), JournalError> {
        let (done, result) = oneshot::channel();
        let queue_flush = {
            let mut queue = self.shared.queue();
            queue.waiting.push(Waiting { frame: frame(record)?, apply: Box::new(apply), done });
            !std::mem::replace(&mut queue.flush_queued, true)
        };
        if queue_flush {
            // Queued apart from this caller, so that dropping it fails no other waiting append;
            // a job the worker will not run answers them all (its drop).
            let job = FlushJob(Some(self.shared.clone()));
            self.storage.detach(move || job.run());
        }
        result.await.unwrap_or(Err(JournalError::Storage(StorageError::Stopped)))
    }

    /// Writes the state as the snapshot and starts a fresh journal now, on the storage worker.
    pub async fn compact(&self) -> Result<(), JournalError> {
        let shared = self.shared.clone();
        self.storage.run(move || shared.file().compact(&(shared.snapshot)())).await?
    }
}

#[cfg(test)]
mod tests;
