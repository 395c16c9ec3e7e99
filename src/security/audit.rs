//! The audit trail: every decision becomes an event, kept in a bounded ring for the panel,
//! appended as a JSON line to a size-capped file in the data directory (rotated once to
//! `audit.log.1`), and logged (admissions at INFO, refusals at WARN). Events carry no
//! credential: the reason names what failed, never the value.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Events the in-memory ring keeps for the panel.
pub const RING_EVENTS: usize = 1000;
/// Distinct (outcome, action, reason) counters kept for the metrics; further ones count as `other`.
pub const MAX_COUNTERS: usize = 256;

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub time: u64,
    /// `publish`, `play` or an API call.
    pub action: &'static str,
    /// `rtmp`, `rtmps`, `whip`, `whep`, `http`, ...
    pub protocol: &'static str,
    /// The application.
    pub app: String,
    /// The stream; for an API call, its method and path.
    pub stream: String,
    /// The peer's address.
    pub peer_ip: IpAddr,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Why: the check that refused it, or what admitted it.
    pub reason: String,
}

struct AuditFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl AuditFile {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(AuditFile { path, file, size, max_bytes })
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size + line.len() as u64 > self.max_bytes && self.size > 0 {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, rotated)?;
            *self = AuditFile::open(self.path.clone(), self.max_bytes)?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// The audit trail of the daemon.
pub struct Audit {
    ring: Mutex<VecDeque<AuditEvent>>,
    file: Option<Mutex<AuditFile>>,
    counts: Mutex<BTreeMap<(bool, &'static str, String), u64>>,
}

impl Audit {
    /// A trail kept in memory only (tests, benchmarks).
    pub fn in_memory() -> Self {
        Audit { ring: Mutex::new(VecDeque::with_capacity(RING_EVENTS)), file: None, counts: Mutex::default() }
    }

    /// A trail that also appends to `data_dir/audit.log`, rotated past `max_bytes`.
    pub fn with_file(data_dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let file = AuditFile::open(data_dir.join("audit.log"), max_bytes)?;
        Ok(Audit { file: Some(Mutex::new(file)), ..Audit::in_memory() })
    }

    /// Records one event.
    pub fn record(&self, event: AuditEvent) {
        let (level, verdict) =
            if event.allowed { (log::Level::Info, "allowed") } else { (log::Level::Warn, "refused") };
        log::log!(
            level,
            "{verdict} {} {} {}/{} from {}: {}",
            event.action,
            event.protocol,
            event.app,
            event.stream,
            event.peer_ip,
            event.reason
        );
        if let Some(file) = &self.file {
            let mut json = serde_json::to_vec(&event).unwrap_or_default();
            json.push(b'\n');
            if let Err(e) = lock(file).append(&json) {
                log::error!("audit log not written: {e}");
            }
        }
        {
            let mut counts = lock(&self.counts);
            let mut key = (event.allowed, event.action, event.reason.clone());
            if counts.len() >= MAX_COUNTERS && !counts.contains_key(&key) {
                key.2 = "other".into();
            }
            *counts.entry(key).or_default() += 1;
        }
        let mut ring = lock(&self.ring);
        if ring.len() == RING_EVENTS {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// How many decisions were made, by (allowed, action, reason), since the start.
    pub fn counts(&self) -> Vec<((bool, &'static str, String), u64)> {
        lock(&self.counts).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The events in memory, oldest first.
    pub fn recent(&self) -> Vec<AuditEvent> {
        lock(&self.ring).iter().cloned().collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            time: n,
            action: "publish",
            protocol: "rtmp",
            app: "LiveApp".into(),
            stream: format!("s{n}"),
            peer_ip: "127.0.0.1".parse().unwrap(),
            allowed: n % 2 == 0,
            reason: "no check enabled".into(),
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let audit = Audit::in_memory();
        for n in 0..(RING_EVENTS as u64 + 5) {
            audit.record(event(n));
        }
        let recent = audit.recent();
        assert_eq!(recent.len(), RING_EVENTS);
        assert_eq!(recent.first().map(|e| e.time), Some(5));
    }

    #[test]
    fn file_is_json_lines_capped_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::with_file(dir.path(), 4096).unwrap();
        for n in 0..100 {
            audit.record(event(n));
        }
        let current = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        assert!(current.len() <= 4096 && rotated.len() <= 4096);
        let last: serde_json::Value = serde_json::from_str(current.lines().last().unwrap()).unwrap();
        assert_eq!(last["stream"], "s99");
        assert_eq!(last["peer_ip"], "127.0.0.1");
    }
}
