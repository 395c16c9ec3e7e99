//! The audit files, written by a thread of their own: events reach it through a bounded queue
//! that never blocks the sender (a full queue drops the event, counts it, and the count is
//! written as an event of its own once there is room). Each file rotates past its size limit
//! into `.1`, `.2`, ... keeping a set number of copies.

use super::AuditEvent;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// Events the queue to the writer thread holds.
pub const QUEUE_EVENTS: usize = 4096;
/// The file of security decisions in the data directory.
pub const DECISIONS_FILE: &str = "audit.log";
/// The file of admin and settings events in the data directory.
pub const ADMIN_FILE: &str = "admin-audit.log";

/// Which file an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trail {
    /// Publish, play and API decisions (`audit.log`).
    Decisions,
    /// Logins, the admin account, settings, tokens and subscribers changed (`admin-audit.log`).
    Admin,
}

/// How the audit files are kept.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// Size past which a file rotates.
    pub max_bytes: u64,
    /// Rotated copies kept of each file.
    pub keep: u32,
}

enum Message {
    Event(Trail, Box<AuditEvent>),
    Sync(std::sync::mpsc::Sender<()>),
}

/// The sending side of the writer thread.
pub struct Writer {
    queue: SyncSender<Message>,
    dropped: AtomicU64,
}

impl Writer {
    /// Opens both files in `dir` and starts the thread that writes them.
    pub fn start(dir: &Path, rotation: Rotation) -> std::io::Result<Self> {
        let decisions = AuditFile::open(dir.join(DECISIONS_FILE), rotation)?;
        let admin = AuditFile::open(dir.join(ADMIN_FILE), rotation)?;
        let (sender, receiver) = sync_channel(QUEUE_EVENTS);
        std::thread::Builder::new().name("audit-writer".into()).spawn(move || write_all(receiver, decisions, admin))?;
        Ok(Writer { queue: sender, dropped: AtomicU64::new(0) })
    }

    /// Queues `event` for `trail`'s file without waiting; a full queue drops and counts it.
    pub fn send(&self, trail: Trail, event: &AuditEvent) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            if self.offer(Trail::Decisions, dropped_event(event.time, dropped)) {
                log::warn!("{dropped} audit event(s) not written to the audit files: the writer was behind");
            } else {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
        }
        if !self.offer(trail, event.clone()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn offer(&self, trail: Trail, event: AuditEvent) -> bool {
        match self.queue.try_send(Message::Event(trail, Box::new(event))) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits (at most 10 s) until every event queued so far is written. Blocks: never on the
    /// runtime thread (tests, shutdown through spawn_blocking).
    pub fn sync(&self) {
        let (done, written) = std::sync::mpsc::channel();
        if self.queue.send(Message::Sync(done)).is_ok() {
            let _ = written.recv_timeout(Duration::from_secs(10));
        }
    }
}

/// The event that reports `dropped` events the files missed.
fn dropped_event(time: u64, dropped: u64) -> AuditEvent {
    AuditEvent {
        time,
        action: "audit",
        protocol: "",
        app: String::new(),
        stream: String::new(),
        peer_ip: super::aggregate::MANY_ADDRESSES,
        allowed: false,
        reason: "audit events not written: the writer was behind".into(),
        count: dropped,
    }
}

fn write_all(receiver: Receiver<Message>, mut decisions: AuditFile, mut admin: AuditFile) {
    for message in receiver {
        match message {
            Message::Event(trail, event) => {
                let file = if trail == Trail::Admin { &mut admin } else { &mut decisions };
                if let Err(e) = file.append(&json_line(&event)) {
                    log::error!("{} not written: {e}", file.path.display());
                }
            }
            Message::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// The event as one JSON line. serde_json escapes C0 controls; DEL and C1 controls (terminal
/// escapes) are escaped too, which keeps the JSON valid: outside strings there are none.
fn json_line(event: &AuditEvent) -> Vec<u8> {
    let json = serde_json::to_string(event).unwrap_or_default();
    let mut line = String::with_capacity(json.len() + 1);
    for c in json.chars() {
        if c.is_control() {
            line.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            line.push(c);
        }
    }
    line.push('\n');
    line.into_bytes()
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

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal whose stream holds control characters the file must escape.
    fn event(n: u64) -> AuditEvent {
        AuditEvent { stream: format!("s{n}\u{9b}\u{7f}\n"), ..crate::security::audit::tests::event(n, false) }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn files_are_json_lines_rotated_into_numbered_copies() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(dir.path(), Rotation { max_bytes: 4096, keep: 3 }).unwrap();
        for n in 0..200 {
            writer.send(Trail::Decisions, &event(n));
        }
        writer.send(Trail::Admin, &event(7));
        writer.sync();
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
    fn a_full_queue_drops_and_reports_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation { max_bytes: 1 << 30, keep: 1 };
        let open = |name: &str| AuditFile::open(dir.path().join(name), rotation).unwrap();
        let (queue, receiver) = sync_channel(2);
        let writer = Writer { queue, dropped: AtomicU64::new(0) };
        for n in 0..10 {
            writer.send(Trail::Decisions, &event(n));
        }
        let (decisions, admin) = (open("audit.log"), open("admin-audit.log"));
        std::thread::spawn(move || write_all(receiver, decisions, admin));
        writer.sync();
        writer.send(Trail::Decisions, &event(10));
        writer.sync();
        let written = lines(&dir.path().join("audit.log"));
        let counts: Vec<(String, u64)> =
            written.iter().map(|e| (e["action"].as_str().unwrap().to_string(), e["count"].as_u64().unwrap())).collect();
        assert_eq!(counts, [("publish", 1), ("publish", 1), ("audit", 8), ("publish", 1)].map(|(a, c)| (a.into(), c)));
    }
}
