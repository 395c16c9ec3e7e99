//! Lockout: an address refused too often within a window is refused outright for a while,
//! before any other check runs. The table has a fixed size, so a flood of addresses cannot grow
//! memory; IPv6 addresses count by /64, the block one subscriber usually holds.

use super::ip_filter::canonical;
use heapless::index_map::FnvIndexMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Addresses the table tracks at once.
pub const TRACKED_ADDRESSES: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

/// The lockout rule and its table.
pub struct Lockout {
    max_failures: u32,
    window: Duration,
    duration: Duration,
    table: FnvIndexMap<IpAddr, Entry, TRACKED_ADDRESSES>,
}

impl Lockout {
    /// `max_failures` refusals within `window` lock an address out for `duration` (0 failures: never).
    pub fn new(max_failures: u32, window: Duration, duration: Duration) -> Self {
        Lockout { max_failures, window, duration, table: FnvIndexMap::new() }
    }

    /// Changes the rule; addresses already counted or locked stay so.
    pub fn set_rule(&mut self, max_failures: u32, window: Duration, duration: Duration) {
        (self.max_failures, self.window, self.duration) = (max_failures, window, duration);
    }

    /// Whether `ip` is locked out at `now`.
    pub fn is_locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.table.get(&key(ip)).and_then(|e| e.locked_until).is_some_and(|until| now < until)
    }

    /// Counts a refusal of `ip`; returns true when it locks the address out.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let key = key(ip);
        if !self.table.contains_key(&key) && self.table.len() == TRACKED_ADDRESSES {
            self.make_room(now);
        }
        let fresh = Entry { window_start: now, failures: 0, locked_until: None };
        let entry = match self.table.get_mut(&key) {
            Some(entry) => entry,
            None => match self.table.insert(key, fresh) {
                Ok(_) => match self.table.get_mut(&key) {
                    Some(entry) => entry,
                    None => return false,
                },
                Err(_) => return false,
            },
        };
        if now.duration_since(entry.window_start) > self.window || entry.locked_until.is_some_and(|until| now >= until)
        {
            *entry = fresh;
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures && entry.locked_until.is_none() {
            entry.locked_until = Some(now + self.duration);
            return true;
        }
        false
    }

    /// Forgets the refusals of `ip` after it was admitted.
    pub fn record_success(&mut self, ip: IpAddr) {
        let key = key(ip);
        if self.table.get(&key).is_some_and(|e| e.locked_until.is_none()) {
            self.table.remove(&key);
        }
    }

    /// Frees a slot: stale entries go first, else the entry that matters least.
    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.table.retain(|_, e| match e.locked_until {
            Some(until) => now < until,
            None => now.duration_since(e.window_start) <= window,
        });
        if self.table.len() < TRACKED_ADDRESSES {
            return;
        }
        // Unlocked entries with few refusals first, then locks that end soonest.
        let weakest = self
            .table
            .iter()
            .min_by_key(|(_, e)| (e.locked_until.is_some(), e.locked_until, e.failures))
            .map(|(ip, _)| *ip);
        if let Some(ip) = weakest {
            self.table.remove(&ip);
        }
    }
}

/// The table key: the canonical IPv4 address, or the IPv6 /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);
    const LOCK: Duration = Duration::from_secs(300);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ten_refusals_in_a_window_lock_for_the_duration() {
        let mut lockout = Lockout::new(10, WINDOW, LOCK);
        let t0 = Instant::now();
        for i in 0..9 {
            assert!(!lockout.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(i)));
        }
        assert!(!lockout.is_locked(ip("10.0.0.1"), t0 + Duration::from_secs(9)));
        assert!(lockout.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(9)));
        assert!(lockout.is_locked(ip("::ffff:10.0.0.1"), t0 + Duration::from_secs(10)));
        assert!(!lockout.is_locked(ip("10.0.0.2"), t0 + Duration::from_secs(10)));
        assert!(lockout.is_locked(ip("10.0.0.1"), t0 + Duration::from_secs(308)));
        assert!(!lockout.is_locked(ip("10.0.0.1"), t0 + Duration::from_secs(309)));
    }

    #[test]
    fn refusals_spread_beyond_the_window_do_not_lock() {
        let mut lockout = Lockout::new(3, WINDOW, LOCK);
        let t0 = Instant::now();
        for i in 0..10u64 {
            assert!(!lockout.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(i * 31)));
        }
    }

    #[test]
    fn success_forgets_and_ipv6_counts_by_slash_64() {
        let mut lockout = Lockout::new(2, WINDOW, LOCK);
        let t0 = Instant::now();
        lockout.record_failure(ip("2001:db8:1:2::1"), t0);
        lockout.record_success(ip("2001:db8:1:2::1"));
        assert!(!lockout.record_failure(ip("2001:db8:1:2::5"), t0));
        assert!(lockout.record_failure(ip("2001:db8:1:2:ffff::9"), t0));
        assert!(lockout.is_locked(ip("2001:db8:1:2::77"), t0));
        assert!(!lockout.is_locked(ip("2001:db8:1:3::1"), t0));
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_table_bounded() {
        let mut lockout = Lockout::new(1, WINDOW, LOCK);
        let t0 = Instant::now();
        assert!(lockout.record_failure(ip("192.0.2.1"), t0));
        let mut other = Lockout::new(5, WINDOW, LOCK);
        for i in 0..(3 * TRACKED_ADDRESSES as u32) {
            let addr = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            lockout.record_failure(addr, t0);
            other.record_failure(addr, t0);
        }
        assert!(lockout.table.len() <= TRACKED_ADDRESSES && other.table.len() <= TRACKED_ADDRESSES);
        assert!(other.table.len() == TRACKED_ADDRESSES);
        let zero = Lockout::new(0, WINDOW, LOCK);
        assert!(!zero.is_locked(ip("192.0.2.1"), t0));
    }
}
