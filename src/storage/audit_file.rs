//! The audit files, written by the storage worker: the audit trail hands each event over as one
//! JSON line ([`AuditSink`]), which waits in a bounded queue until a flush job on the worker
//! appends the queued lines. A full queue drops its oldest line and counts the drop (the
//! metrics show the count, a log line and a line in `audit.log` report it), so that recording a
//! decision never waits for the disk. Each file rotates past its size limit into `.1`, `.2`,
//! ... keeping a set number of copies.

use super::Storage;
use crate::security::audit::{AuditSink, Trail, dropped_event, json_line};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lines the queue to the worker holds; past that the oldest is dropped.
pub const QUEUE_LINES: usize = 4096;
/// The file of security decisions in the data directory.
pub const DECISIONS_FILE: &str = "audit.log";
/// The file of admin and settings events in the data directory.
pub const ADMIN_FILE: &str = "admin-audit.log";

/// How the audit files are kept.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// Size past which a file rotates.
    pub max_bytes: u64,
    /// Rotated copies kept of each file.
    pub keep: u32,
}

/// The audit files of the data directory, as the audit trail's sink.
pub struct AuditFiles {
    shared: Arc<Shared>,
    storage: Storage,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Touched by the worker only (a mutex for the type system, never contended).
    files: Mutex<Files>,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    lines: VecDeque<(Trail, Vec<u8>)>,
    flush_queued: bool,
}

struct Files {
    decisions: AuditFile,
    admin: AuditFile,
    /// Drops already reported in `audit.log` and the log.
    reported: u64,
}

impl AuditFiles {
    /// Opens (creating, mode 0600) both files in `dir`, on the worker.
    pub async fn open(storage: &Storage, dir: &Path, rotation: Rotation) -> std::io::Result<Self> {
        let dir = dir.to_path_buf();
        let files = storage
            .run(move || -> std::io::Result<Files> {
                let decisions = AuditFile::open(dir.join(DECISIONS_FILE), rotation)?;
                let admin = AuditFile::open(dir.join(ADMIN_FILE), rotation)?;
                Ok(Files { decisions, admin, reported: 0 })
            })
            .await
            .map_err(std::io::Error::other)??;
        let shared = Shared { pending: Mutex::default(), files: Mutex::new(files), dropped: AtomicU64::new(0) };
        Ok(AuditFiles { shared: Arc::new(shared), storage: storage.clone() })
    }
}

impl AuditSink for AuditFiles {
    fn append(&self, trail: Trail, line: Vec<u8>) {
        let mut pending = lock(&self.shared.pending);
        if pending.lines.len() >= QUEUE_LINES {
            pending.lines.pop_front();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        pending.lines.push_back((trail, line));
        if !pending.flush_queued {
            // A full job queue leaves the lines queued: the next append or sync flushes them.
            let shared = self.shared.clone();
            pending.flush_queued = self.storage.submit(move || shared.flush()).is_ok();
        }
    }

    fn sync(&self) {
        let shared = self.shared.clone();
        if self.storage.run_blocking(move || shared.flush()).is_err() {
            log::error!("audit files not synced: the storage worker has stopped");
        }
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Appends every queued line (on the worker), after a line reporting new drops.
    fn flush(&self) {
        let lines = {
            let mut pending = lock(&self.pending);
            pending.flush_queued = false;
            std::mem::take(&mut pending.lines)
        };
        let mut files = lock(&self.files);
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > files.reported {
            let new = dropped - files.reported;
            files.reported = dropped;
            log::warn!("{new} audit line(s) dropped: the storage worker was behind ({dropped} since the start)");
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            files.decisions.append(&json_line(&dropped_event(now, new)));
        }
        for (trail, line) in lines {
            match trail {
                Trail::Decisions => files.decisions.append(&line),
                Trail::Admin => files.admin.append(&line),
            }
        }
    }
}

struct AuditFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl AuditFile {
    fn open(path: PathBuf, rotation: Rotation) -> std::io::Result<Self> {
        // Readable by rampart only, like every file it writes.
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
        let size = file.metadata()?.len();
        Ok(AuditFile { path, file, size, rotation })
    }

    /// Appends `line`, rotating first when it would pass the size limit; logs a failure.
    fn append(&mut self, line: &[u8]) {
        if let Err(e) = self.try_append(line) {
            log::error!("{} not written: {e}", self.path.display());
        }
    }

    fn try_append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if self.size.saturating_add(len) > self.rotation.max_bytes && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    /// `path.N-1` to `path.N`, ..., `path` to `path.1`; the oldest copy is overwritten.
    fn rotate(&mut self) -> std::io::Result<()> {
        for n in (1..self.rotation.keep).rev() {
            match std::fs::rename(self.copy(n), self.copy(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.copy(1))?;
        *self = AuditFile::open(self.path.clone(), self.rotation)?;
        Ok(())
    }

    fn copy(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::audit::AuditEvent;
    use crate::storage::fs::RealFs;

    /// A refusal whose stream holds control characters the file must escape.
    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            time: n,
            action: "publish",
            protocol: "rtmp",
            app: "LiveApp".into(),
            stream: format!("s{n}\u{9b}\u{7f}\n"),
            peer_ip: "127.0.0.1".parse().unwrap(),
            allowed: false,
            reason: "no check enabled".into(),
            count: 1,
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn files(dir: &Path, rotation: Rotation) -> (Storage, AuditFiles) {
        let storage = Storage::start(Arc::new(RealFs)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let files = runtime.block_on(AuditFiles::open(&storage, dir, rotation)).unwrap();
        (storage, files)
    }

    #[test]
    fn files_are_json_lines_rotated_into_numbered_copies() {
        let dir = tempfile::tempdir().unwrap();
        let (_storage, files) = files(dir.path(), Rotation { max_bytes: 4096, keep: 3 });
        for n in 0..200 {
            files.append(Trail::Decisions, json_line(&event(n)));
        }
        files.append(Trail::Admin, json_line(&event(7)));
        files.sync();
        let path = |name: &str| dir.path().join(name);
        for name in ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"] {
            let size = std::fs::metadata(path(name)).unwrap().len();
            assert!(size > 0 && size <= 4096, "{name}: {size}");
        }
        assert!(!path("audit.log.4").exists());
        let last = lines(&path("audit.log")).pop().unwrap();
        assert_eq!(last["stream"], "s199\u{9b}\u{7f}\n");
        assert_eq!(last["peer_ip"], "127.0.0.1");
        let raw = std::fs::read_to_string(path("audit.log")).unwrap();
        assert!(!raw.contains('\u{9b}') && !raw.contains('\u{7f}') && raw.contains("\\u009b"), "escaped");
        assert_eq!(lines(&path("admin-audit.log")).len(), 1);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_lines_counts_them_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, files) = files(dir.path(), Rotation { max_bytes: 1 << 30, keep: 1 });
        // The worker is busy (a slow fsync, say) while the lines come in.
        let (release, busy) = std::sync::mpsc::channel::<()>();
        storage
            .submit(move || {
                let _ = busy.recv();
            })
            .unwrap();
        let total = QUEUE_LINES as u64 + 10;
        for n in 0..total {
            files.append(Trail::Decisions, json_line(&event(n)));
        }
        assert_eq!(files.dropped(), 10, "appending never waited for the worker");
        release.send(()).unwrap();
        files.sync();
        let written = lines(&dir.path().join("audit.log"));
        assert_eq!(written.len(), QUEUE_LINES + 1);
        assert_eq!((written[0]["action"].as_str(), written[0]["count"].as_u64()), (Some("audit"), Some(10)));
        let times: Vec<u64> = written[1..].iter().map(|e| e["time"].as_u64().unwrap()).collect();
        assert_eq!(times, (10..total).collect::<Vec<_>>(), "the newest lines are kept, in order");
        files.append(Trail::Decisions, json_line(&event(total)));
        files.sync();
        assert_eq!(lines(&dir.path().join("audit.log")).len(), QUEUE_LINES + 2, "a drop is reported once");
    }
}
