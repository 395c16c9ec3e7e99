//! Repeated refusals folded into one event: the first refusal of an (address, action, protocol,
//! application, reason) in a minute is recorded at once, the later ones of that minute only
//! counted, and the count becomes one event when the minute ends. The table is bounded: when
//! it is full, refusals from further addresses are folded per reason only, and past that into
//! one entry for everything, so a flood from many addresses is bounded too.

use super::AuditEvent;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// Entries kept per address (and action, protocol, application, reason) in one minute.
pub const MAX_PER_ADDRESS: usize = 256;
/// Entries kept per reason only, for refusals once the per-address entries are all taken.
pub const MAX_PER_REASON: usize = 64;
/// The address of an event that folds refusals from several addresses.
pub const MANY_ADDRESSES: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// The stream of an event that folds refusals for several streams.
pub const MANY_STREAMS: &str = "*";
/// The reason of the event that folds refusals once every entry is taken.
pub const MANY_REASONS: &str = "refusals of several kinds (audit aggregation table full)";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    peer: Option<IpAddr>,
    action: &'static str,
    protocol: &'static str,
    app: String,
    reason: String,
}

struct Entry {
    /// The latest refusal counted, which the folded event describes.
    last: AuditEvent,
    /// Refusals counted after the first.
    counted: u64,
    /// Whether every counted refusal named the same stream.
    one_stream: bool,
}

/// The refusals of the current minute.
#[derive(Default)]
pub struct Aggregates {
    minute: u64,
    entries: HashMap<Key, Entry>,
    per_address: usize,
}

impl Aggregates {
    /// When the minute of `now` (unix seconds) is not the table's, empties the table and returns
    /// the folded events of the minute that ended.
    pub fn expire(&mut self, now: u64) -> Vec<AuditEvent> {
        let minute = now / 60;
        if minute == self.minute {
            return Vec::new();
        }
        self.minute = minute;
        self.per_address = 0;
        let mut folded: Vec<(Key, Entry)> = self.entries.drain().filter(|(_, e)| e.counted > 0).collect();
        folded.sort_by_key(|(_, e)| e.last.time);
        folded.into_iter().map(|(key, entry)| fold(key, entry)).collect()
    }

    /// Takes a refusal of the current minute (call [`Aggregates::expire`] first): true when it is
    /// the first of its kind and is to be recorded now, false when it was counted.
    pub fn first_of(&mut self, refusal: &AuditEvent) -> bool {
        let mut key = Key {
            // An IPv6 /64 is one address here too, as for every other count per address.
            peer: Some(crate::security::ip_filter::address_block(refusal.peer_ip)),
            action: refusal.action,
            protocol: refusal.protocol,
            app: refusal.app.clone(),
            reason: refusal.reason.clone(),
        };
        if !self.entries.contains_key(&key) && self.per_address >= MAX_PER_ADDRESS {
            key = Key { peer: None, action: "", protocol: "", app: String::new(), reason: key.reason };
            if !self.entries.contains_key(&key) && self.entries.len() >= MAX_PER_ADDRESS + MAX_PER_REASON {
                key.reason = String::new();
            }
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.one_stream &= entry.last.stream == refusal.stream;
            entry.counted = entry.counted.saturating_add(refusal.count);
            entry.last = refusal.clone();
            return false;
        }
        if key.peer.is_some() {
            self.per_address += 1;
        }
        self.entries.insert(key, Entry { last: refusal.clone(), counted: 0, one_stream: true });
        true
    }
}

/// The one event that stands for the refusals an entry counted.
fn fold(key: Key, entry: Entry) -> AuditEvent {
    let mut event = entry.last;
    event.count = entry.counted;
    // The counted refusals came from the whole block (an IPv6 /64), or from many addresses.
    event.peer_ip = key.peer.unwrap_or(MANY_ADDRESSES);
    if key.reason.is_empty() {
        event.reason = MANY_REASONS.to_string();
    }
    if !entry.one_stream {
        event.stream = MANY_STREAMS.to_string();
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(time: u64, peer: &str, stream: &str, reason: &str) -> AuditEvent {
        AuditEvent {
            time,
            action: "play",
            protocol: "whep",
            app: "LiveApp".into(),
            stream: stream.into(),
            peer_ip: peer.parse().unwrap(),
            allowed: false,
            reason: reason.into(),
            count: 1,
        }
    }

    #[test]
    fn a_minute_of_refusals_is_the_first_and_one_count() {
        let mut table = Aggregates::default();
        assert!(table.expire(600).is_empty());
        assert!(table.first_of(&refusal(600, "10.0.0.1", "s1", "JWT missing")));
        for n in 0..11_999 {
            assert!(!table.first_of(&refusal(600 + n % 60, "10.0.0.1", &format!("s{}", n % 2), "JWT missing")));
        }
        assert!(table.first_of(&refusal(601, "10.0.0.2", "s1", "JWT missing")), "another address is recorded");
        assert!(table.first_of(&refusal(601, "10.0.0.1", "s1", "JWT expired")), "another reason is recorded");
        assert!(table.expire(659).is_empty(), "same minute");
        let folded = table.expire(660);
        assert_eq!(folded.len(), 1, "{folded:?}");
        assert_eq!(
            (folded[0].count, folded[0].stream.as_str(), folded[0].reason.as_str()),
            (11_999, "*", "JWT missing")
        );
        assert_eq!(folded[0].peer_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(table.first_of(&refusal(660, "10.0.0.1", "s1", "JWT missing")), "a new minute starts again");
    }

    #[test]
    fn a_full_table_folds_per_reason_and_then_everything() {
        let mut table = Aggregates::default();
        table.expire(0);
        let mut recorded = 0;
        for n in 0..100_000u32 {
            let [_, a, b, c] = n.to_be_bytes();
            let reason = format!("r{}", n % 100);
            recorded += usize::from(table.first_of(&refusal(1, &format!("10.{a}.{b}.{c}"), "s", &reason)));
        }
        assert!(recorded <= MAX_PER_ADDRESS + MAX_PER_REASON + 1, "{recorded}");
        assert!(table.entries.len() <= MAX_PER_ADDRESS + MAX_PER_REASON + 1);
        let folded = table.expire(60);
        let total: u64 = folded.iter().map(|e| e.count).sum::<u64>() + recorded as u64;
        assert_eq!(total, 100_000);
        assert!(folded.iter().any(|e| e.peer_ip == MANY_ADDRESSES && e.reason == MANY_REASONS));
    }
}
