//! The audit trail: every decision becomes an event, kept in bounded rings for the panel,
//! handed as a JSON line to the [`AuditSink`] the rim provides (the storage worker appends it
//! to size-capped, rotated files in the data directory, never on the runtime thread), and
//! logged (admissions at INFO, refusals at WARN). Events carry no credential: the reason names
//! what failed, never the value. This module does no file I/O.
//!
//! Two trails: publish, play and API decisions (`audit.log`), and admin events (logins, the
//! admin account, settings, tokens, subscribers and streams changed: `admin-audit.log`) with a
//! ring of their own, so that no flood of refusals rotates them away. Repeated refusals are
//! folded per address, reason and minute ([`aggregate`]); an event's `count` says how many
//! decisions it stands for.

pub mod aggregate;

use aggregate::Aggregates;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Decision events the in-memory ring keeps for the panel.
pub const RING_EVENTS: usize = 1000;
/// Admin events the in-memory ring keeps for the panel, apart from the decisions.
pub const ADMIN_RING_EVENTS: usize = 1000;
/// Distinct (outcome, action, reason) counters kept for the metrics; further ones count as `other`.
pub const MAX_COUNTERS: usize = 256;

/// One decision, or several folded into one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Unix seconds (of the latest decision it stands for).
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
    /// How many decisions it stands for: 1, or the refusals of a minute counted after the first.
    pub count: u64,
}

/// Which file an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trail {
    /// Publish, play and API decisions (`audit.log`).
    Decisions,
    /// Logins, the admin account, settings, tokens and subscribers changed (`admin-audit.log`).
    Admin,
}

/// Where the audit lines go (the port the rim implements: the storage worker's audit files).
pub trait AuditSink: Send + Sync {
    /// Queues `line` (one JSON line, newline included) for `trail`'s file. Never blocks: a full
    /// queue drops its oldest line and counts the drop.
    fn append(&self, trail: Trail, line: Vec<u8>);
    /// Waits until every line queued so far is written. Blocks: never on the runtime thread.
    fn sync(&self);
    /// Lines dropped since the start because the queue was full.
    fn dropped(&self) -> u64;
}

/// The event that reports `dropped` lines the files missed.
pub fn dropped_event(time: u64, dropped: u64) -> AuditEvent {
    AuditEvent {
        time,
        action: "audit",
        protocol: "",
        app: String::new(),
        stream: String::new(),
        peer_ip: aggregate::MANY_ADDRESSES,
        allowed: false,
        reason: "audit events not written: the writer was behind".into(),
        count: dropped,
    }
}

/// The event as one JSON line. serde_json escapes C0 controls; DEL and C1 controls (terminal
/// escapes) are escaped too, which keeps the JSON valid: outside strings there are none.
pub fn json_line(event: &AuditEvent) -> Vec<u8> {
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

#[derive(Default)]
struct Rings {
    next: u64,
    decisions: VecDeque<(u64, AuditEvent)>,
    admin: VecDeque<(u64, AuditEvent)>,
}

/// The audit trail of the daemon.
pub struct Audit {
    rings: Mutex<Rings>,
    aggregates: Mutex<Aggregates>,
    sink: Option<Arc<dyn AuditSink>>,
    counts: Mutex<BTreeMap<(bool, &'static str, String), u64>>,
}

impl Audit {
    /// A trail kept in memory only (tests, benchmarks).
    pub fn in_memory() -> Self {
        Audit { rings: Mutex::default(), aggregates: Mutex::default(), sink: None, counts: Mutex::default() }
    }

    /// A trail that also hands every event to `sink` (the audit files).
    pub fn with_sink(sink: Arc<dyn AuditSink>) -> Self {
        Audit { sink: Some(sink), ..Audit::in_memory() }
    }

    /// Records one decision; a refusal like one already recorded this minute is only counted.
    pub fn record(&self, event: AuditEvent) {
        self.count(&event);
        let mut aggregates = lock(&self.aggregates);
        let folded = aggregates.expire(event.time);
        let now = event.allowed || aggregates.first_of(&event);
        drop(aggregates);
        for old in folded {
            self.keep(Trail::Decisions, old);
        }
        if now {
            self.keep(Trail::Decisions, event);
        }
    }

    /// Records an admin event (a login, a change): in the admin trail, never folded.
    pub fn record_admin(&self, event: AuditEvent) {
        self.count(&event);
        self.tick(event.time);
        self.keep(Trail::Admin, event);
    }

    /// Records the folded refusals of a minute that ended before `now` (unix seconds).
    pub fn tick(&self, now: u64) {
        let folded = lock(&self.aggregates).expire(now);
        for old in folded {
            self.keep(Trail::Decisions, old);
        }
    }

    /// Records the folded refusals not yet recorded, and waits for the files (at shutdown).
    /// Blocks: not on the runtime thread.
    pub fn close(&self) {
        self.tick(u64::MAX);
        self.sync();
    }

    /// Waits until the files hold every event recorded so far. Blocks: not on the runtime thread.
    pub fn sync(&self) {
        if let Some(sink) = &self.sink {
            sink.sync();
        }
    }

    /// Audit lines the files missed because their queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.sink.as_ref().map_or(0, |sink| sink.dropped())
    }

    fn count(&self, event: &AuditEvent) {
        let mut counts = lock(&self.counts);
        let mut key = (event.allowed, event.action, event.reason.clone());
        if counts.len() >= MAX_COUNTERS && !counts.contains_key(&key) {
            key.2 = "other".into();
        }
        let count = counts.entry(key).or_default();
        *count = count.saturating_add(event.count);
    }

    /// Logs the event, queues it for its file and keeps it in its ring.
    fn keep(&self, trail: Trail, event: AuditEvent) {
        let (level, verdict) =
            if event.allowed { (log::Level::Info, "allowed") } else { (log::Level::Warn, "refused") };
        let times = if event.count > 1 { format!(" ({} times)", event.count) } else { String::new() };
        log::log!(
            level,
            "{verdict} {} {} {}/{} from {}: {}{times}",
            event.action,
            event.protocol,
            event.app,
            event.stream,
            event.peer_ip,
            event.reason
        );
        if let Some(sink) = &self.sink {
            sink.append(trail, json_line(&event));
        }
        let mut rings = lock(&self.rings);
        let seq = rings.next;
        rings.next += 1;
        let (ring, cap) = match trail {
            Trail::Decisions => (&mut rings.decisions, RING_EVENTS),
            Trail::Admin => (&mut rings.admin, ADMIN_RING_EVENTS),
        };
        if ring.len() == cap {
            ring.pop_front();
        }
        ring.push_back((seq, event));
    }

    /// How many decisions were made, by (allowed, action, reason), since the start.
    pub fn counts(&self) -> Vec<((bool, &'static str, String), u64)> {
        lock(&self.counts).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The events in memory, both trails, oldest first.
    pub fn recent(&self) -> Vec<AuditEvent> {
        let mut events = self.newest(usize::MAX, |_| true);
        events.reverse();
        events
    }

    /// The newest events that pass `filter`, newest first: up to `per_trail` decisions and up
    /// to `per_trail` admin events, so that decisions never push admin events out.
    pub fn newest(&self, per_trail: usize, filter: impl Fn(&AuditEvent) -> bool) -> Vec<AuditEvent> {
        let rings = lock(&self.rings);
        let pick = |ring: &VecDeque<(u64, AuditEvent)>| -> Vec<(u64, AuditEvent)> {
            ring.iter().rev().filter(|(_, e)| filter(e)).take(per_trail).cloned().collect()
        };
        let mut events = pick(&rings.decisions);
        events.extend(pick(&rings.admin));
        events.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        events.into_iter().map(|(_, e)| e).collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decision numbered `n` (its time and stream), for the tests of the trail's parts.
    pub(super) fn event(n: u64, allowed: bool) -> AuditEvent {
        AuditEvent {
            time: n,
            action: "publish",
            protocol: "rtmp",
            app: "LiveApp".into(),
            stream: format!("s{n}"),
            peer_ip: "127.0.0.1".parse().unwrap(),
            allowed,
            reason: "no check enabled".into(),
            count: 1,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let audit = Audit::in_memory();
        for n in 0..(RING_EVENTS as u64 + 5) {
            audit.record(event(n, true));
        }
        let recent = audit.recent();
        assert_eq!(recent.len(), RING_EVENTS);
        assert_eq!(recent.first().map(|e| e.time), Some(5));
    }

    #[test]
    fn admin_events_outlive_a_flood_of_decisions() {
        let audit = Audit::in_memory();
        audit.record_admin(AuditEvent { action: "api", ..event(1, true) });
        for n in 0..5000 {
            audit.record(event(2 + n, n % 3 != 0));
        }
        let newest = audit.newest(10, |_| true);
        assert_eq!(newest.len(), 11);
        assert_eq!(newest.last().map(|e| e.action), Some("api"));
        assert_eq!(audit.newest(10, |e| !e.allowed).len(), 10);
    }

    #[test]
    fn repeated_refusals_are_counted_in_full() {
        let audit = Audit::in_memory();
        for n in 0..1000 {
            audit.record(event(600 + n % 60, false));
        }
        assert_eq!(audit.recent().len(), 1, "one event recorded at once");
        audit.tick(660);
        let recent = audit.recent();
        assert_eq!(recent.iter().map(|e| e.count).collect::<Vec<_>>(), [1, 999]);
        assert_eq!(audit.counts(), [((false, "publish", "no check enabled".to_string()), 1000)]);
    }
}
