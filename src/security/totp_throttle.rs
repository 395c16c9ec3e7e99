//! A ceiling on wrong TOTP codes, whatever the address they come from. A code has six digits, so
//! the lockout per address alone let an attacker rotating through addresses guess one in a few
//! minutes. Wrong codes are counted per code window (the TOTP step) at three scopes, and a scope
//! at its ceiling refuses every code until the next step:
//! - one subscriber of one stream and role: [`PER_SUBSCRIBER`] a step, and after
//!   [`FREE_GUESSES`] wrong codes each next try waits twice as long (1 s, 2 s, ... up to 64 s);
//! - for subscribers not in the datastore (any id opens a stream with a key derived from the
//!   application's secret, so an attacker may rotate ids): one stream and role, whatever the
//!   id, [`PER_STREAM`]; one application and role, whatever the stream, [`PER_APP`].
//!
//! A registered subscriber counts only against itself, so guesses at other ids never refuse its
//! right code. The right code is never locked out for long: every count starts again at the next
//! step (unregistered ids all share the application's period), and a right code clears its
//! subscriber's count. The table has a fixed size; when it is full of
//! live counts, further codes are refused (fail closed) until a step ends.

use super::Action;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// Wrong codes a subscriber may send in one step before its tries are spaced out.
pub const FREE_GUESSES: u32 = 3;
/// Wrong codes one subscriber of one stream and role may send in one step.
pub const PER_SUBSCRIBER: u32 = 10;
/// Wrong codes for one stream and role in one step, all subscribers together.
pub const PER_STREAM: u32 = 50;
/// Wrong codes for one application and role in one step, all streams together.
pub const PER_APP: u32 = 500;
/// Counts the table keeps at once.
pub const ENTRIES: usize = 4096;
/// The longest wait between two tries of one subscriber.
const MAX_WAIT: Duration = Duration::from_secs(64);

/// Who guesses: the subscriber, stream and role a code is for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The application.
    pub app: &'a str,
    /// The stream.
    pub stream: &'a str,
    /// The subscriber id the client gave.
    pub subscriber: &'a str,
    /// Whether the subscriber is in the datastore (with a key of its own).
    pub registered: bool,
    /// Publish or play.
    pub action: Action,
}

/// When a code is tried: the TOTP step it belongs to, and the monotonic time.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The current step (`unix / period`).
    pub step: u64,
    /// Monotonic time, for the waits.
    pub instant: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    step: u64,
    failures: u32,
    wait_until: Option<Instant>,
}

/// The counts of wrong codes.
#[derive(Debug, Default)]
pub struct TotpThrottle {
    hasher: RandomState,
    /// At most [`ENTRIES`] counts (a heap map: 128 KiB inline would not fit a thread's stack).
    counts: HashMap<u64, Count>,
    /// The step in which a wrong code found no room: until it ends, codes that have no count
    /// are refused untried.
    full_in: Option<u64>,
}

impl TotpThrottle {
    /// The keys of the scopes of `target`, each with its ceiling: the subscriber's own first.
    fn scopes(&self, t: Target<'_>) -> Vec<(u64, u32)> {
        let mut scopes = vec![(self.hasher.hash_one((0u8, t.app, t.stream, t.subscriber, t.action)), PER_SUBSCRIBER)];
        if !t.registered {
            scopes.push((self.hasher.hash_one((1u8, t.app, t.stream, t.action)), PER_STREAM));
            scopes.push((self.hasher.hash_one((2u8, t.app, t.action)), PER_APP));
        }
        scopes
    }

    /// Whether a code for `target` is refused untried at `now`.
    pub fn refused(&self, target: Target<'_>, now: Moment) -> bool {
        let scopes = self.scopes(target);
        let untracked = scopes.iter().any(|(key, _)| !self.counts.contains_key(key));
        self.full_in == Some(now.step) && untracked
            || scopes.into_iter().any(|(key, ceiling)| {
                self.counts.get(&key).is_some_and(|c| {
                    c.step == now.step && (c.failures >= ceiling || c.wait_until.is_some_and(|w| now.instant < w))
                })
            })
    }

    /// Counts a wrong code for `target`.
    pub fn record_failure(&mut self, target: Target<'_>, now: Moment) {
        for (i, (key, _)) in self.scopes(target).into_iter().enumerate() {
            let Some(count) = self.count_mut(key, now) else {
                self.full_in = Some(now.step);
                continue;
            };
            count.failures = count.failures.saturating_add(1);
            if i == 0 && count.failures > FREE_GUESSES {
                let doublings = (count.failures - FREE_GUESSES - 1).min(6);
                count.wait_until = Some(now.instant + Duration::from_secs(1 << doublings).min(MAX_WAIT));
            }
        }
    }

    /// Clears the subscriber's own count after a right code.
    pub fn record_success(&mut self, target: Target<'_>) {
        if let Some((key, _)) = self.scopes(target).first() {
            self.counts.remove(key);
        }
    }

    /// The count under `key` for the step of `now`, made when missing; `None` when the table is
    /// full of counts of the current step.
    fn count_mut(&mut self, key: u64, now: Moment) -> Option<&mut Count> {
        if !self.counts.contains_key(&key) && self.counts.len() >= ENTRIES {
            self.counts.retain(|_, c| c.step >= now.step || c.wait_until.is_some_and(|w| now.instant < w));
        }
        if !self.counts.contains_key(&key) && self.counts.len() >= ENTRIES {
            return None;
        }
        let fresh = Count { step: now.step, failures: 0, wait_until: None };
        let count = self.counts.entry(key).or_insert(fresh);
        if count.step != now.step {
            *count = fresh;
        }
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(stream: &'a str, subscriber: &'a str) -> Target<'a> {
        Target { app: "LiveApp", stream, subscriber, registered: false, action: Action::Play }
    }

    #[test]
    fn a_subscribers_tries_are_spaced_out_then_capped_until_the_next_step() {
        let mut throttle = TotpThrottle::default();
        let t0 = Instant::now();
        let at = |secs: u64, step: u64| Moment { step, instant: t0 + Duration::from_secs(secs) };
        let viewer = target("s1", "viewer");
        for _ in 0..FREE_GUESSES {
            assert!(!throttle.refused(viewer, at(0, 7)));
            throttle.record_failure(viewer, at(0, 7));
        }
        assert!(!throttle.refused(viewer, at(0, 7)), "the free guesses wait for nothing");
        throttle.record_failure(viewer, at(0, 7));
        assert!(throttle.refused(viewer, at(0, 7)), "then a wait of 1 s");
        assert!(!throttle.refused(viewer, at(1, 7)));
        throttle.record_failure(viewer, at(1, 7));
        assert!(throttle.refused(viewer, at(2, 7)) && !throttle.refused(viewer, at(3, 7)), "then 2 s");
        assert!(!throttle.refused(target("s1", "other"), at(1, 7)), "another subscriber is not slowed");

        let mut clock = 3;
        while throttle.counts.values().next().is_some_and(|c| c.failures < PER_SUBSCRIBER) {
            clock += 100;
            throttle.record_failure(viewer, at(clock, 7));
        }
        assert!(throttle.refused(viewer, at(clock + 1000, 7)), "at the ceiling: refused for the rest of the step");
        assert!(!throttle.refused(viewer, at(clock + 1000, 8)), "the next step starts again");
    }

    #[test]
    fn rotating_subscriber_ids_or_streams_meets_the_stream_and_application_ceilings() {
        let mut throttle = TotpThrottle::default();
        let now = Moment { step: 1, instant: Instant::now() };
        let ids: Vec<String> = (0..PER_APP).map(|i| format!("id{i}")).collect();
        for id in ids.iter().take(PER_STREAM as usize) {
            assert!(!throttle.refused(target("s1", id), now));
            throttle.record_failure(target("s1", id), now);
        }
        assert!(throttle.refused(target("s1", "fresh"), now), "the stream's ceiling");
        assert!(!throttle.refused(target("s2", "fresh"), now));
        for (i, id) in ids.iter().enumerate().skip(PER_STREAM as usize) {
            let stream = format!("stream{}", i % 20);
            throttle.record_failure(target(&stream, id), now);
        }
        assert!(throttle.refused(target("s3", "fresh"), now), "the application's ceiling");
        let publish = Target { action: Action::Publish, ..target("s3", "fresh") };
        assert!(!throttle.refused(publish, now), "the other role counts apart");
        let registered = Target { registered: true, ..target("s1", "viewer") };
        assert!(!throttle.refused(registered, now), "a registered subscriber counts only against itself");
    }

    #[test]
    fn a_right_code_clears_its_subscriber_and_a_full_table_fails_closed() {
        let mut throttle = TotpThrottle::default();
        let now = Moment { step: 1, instant: Instant::now() };
        for _ in 0..=FREE_GUESSES {
            throttle.record_failure(target("s1", "viewer"), now);
        }
        assert!(throttle.refused(target("s1", "viewer"), now));
        throttle.record_success(target("s1", "viewer"));
        assert!(!throttle.refused(target("s1", "viewer"), now));

        let apps: Vec<String> = (0..ENTRIES / 3 + 1).map(|i| format!("app{i}")).collect();
        for app in &apps {
            throttle.record_failure(
                Target { app, stream: "s", subscriber: "x", registered: false, action: Action::Play },
                now,
            );
        }
        assert!(throttle.refused(target("s9", "new"), now), "a full table refuses codes it cannot count");
        let next = Moment { step: 2, ..now };
        assert!(!throttle.refused(target("s9", "new"), next), "until the step ends");
    }
}
