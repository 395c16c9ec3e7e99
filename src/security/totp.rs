//! TOTP (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, six digits. A registered subscriber has its
//! own key; any other subscriber's key is derived from the application's secret, so that a code
//! opens only one subscriber, stream and role:
//! `key = HMAC-SHA256(timeTokenSecretFor<Role>, subscriberId + streamId + role)`.

use super::Action;
use ring::hmac;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use subtle::ConstantTimeEq;

/// Digits of a code.
pub const DIGITS: u32 = 6;

/// The HOTP value of `key` at `counter` with `digits` digits (RFC 4226 dynamic truncation).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    hotp_with(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key), counter, digits)
}

fn hotp_with(key: &hmac::Key, counter: u64, digits: u32) -> u32 {
    let mac = hmac::sign(key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac.get(offset..offset + 4).map_or(0, |b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
    word % 10u32.pow(digits)
}

/// The code of `key` at `unix_secs` with time step `period`, as the six digits a client sends.
pub fn code_at(key: &[u8], unix_secs: u64, period: u64) -> String {
    format!("{:06}", hotp(key, unix_secs / period.max(1), DIGITS))
}

/// Checks `code` against the current step and the one before (clock skew); returns the step
/// that matched, so the caller can refuse it next time.
pub fn check(key: &[u8], code: &str, unix_secs: u64, period: u64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let current = unix_secs / period.max(1);
    let mut matched = None;
    // Both steps are always computed and compared in constant time, so timing tells nothing.
    for step in [current.saturating_sub(1), current] {
        if bool::from(hotp_with(&key, step, DIGITS).ct_eq(&given)) {
            matched = Some(step);
        }
    }
    matched
}

/// The HMAC key of an application's TOTP secret, from which unregistered subscribers' keys derive.
pub fn app_key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// The key of a subscriber that is not in the datastore.
pub fn derived_key(app_key: &hmac::Key, subscriber_id: &str, stream_id: &str, action: Action) -> Vec<u8> {
    let mut context = hmac::Context::with_key(app_key);
    for part in [subscriber_id, stream_id, action.as_str()] {
        context.update(part.as_bytes());
    }
    context.sign().as_ref().to_vec()
}

/// Subscribers whose last accepted step the replay guard remembers at once.
pub const REPLAY_ENTRIES: usize = 4096;

/// Why the replay guard refused a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The step (or a later one) was accepted already.
    Used,
    /// The table is full of steps still inside their window.
    Full,
}

/// Remembers the last step accepted per subscriber, stream and role, so a code works once.
/// Only steps still inside the acceptance window are kept, so the table stays small; when it is
/// full of live entries, further codes are refused (fail closed) until steps age out.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    hasher: RandomState,
    last: HashMap<u64, (u64, u64)>,
}

impl ReplayGuard {
    fn key(&self, subscriber_id: &str, stream_id: &str, action: Action) -> u64 {
        self.hasher.hash_one((subscriber_id, stream_id, action))
    }

    /// Whether `step` was already accepted (or an older one is presented after a newer).
    pub fn used(&self, subscriber_id: &str, stream_id: &str, action: Action, step: u64) -> bool {
        let key = self.key(subscriber_id, stream_id, action);
        self.last.get(&key).is_some_and(|(last, _)| step <= *last)
    }

    /// Records `step` as used. Returns the step it replaces, so that an admission that fails
    /// later can [`ReplayGuard::restore`] it.
    pub fn claim(
        &mut self,
        subscriber_id: &str,
        stream_id: &str,
        action: Action,
        step: u64,
        period: u64,
        now: u64,
    ) -> Result<Option<u64>, ReplayError> {
        let key = self.key(subscriber_id, stream_id, action);
        if self.last.get(&key).is_some_and(|(last, _)| step <= *last) {
            return Err(ReplayError::Used);
        }
        if !self.last.contains_key(&key) && self.last.len() >= REPLAY_ENTRIES {
            // A step older than the one before the current one can never be presented again.
            self.last.retain(|_, (step, period)| (*step + 2) * (*period).max(1) > now);
            if self.last.len() >= REPLAY_ENTRIES {
                return Err(ReplayError::Full);
            }
        }
        Ok(self.last.insert(key, (step, period)).map(|(previous, _)| previous))
    }

    /// Puts back the step a failed admission had claimed.
    pub fn restore(
        &mut self,
        subscriber_id: &str,
        stream_id: &str,
        action: Action,
        previous: Option<u64>,
        period: u64,
    ) {
        let key = self.key(subscriber_id, stream_id, action);
        match previous {
            Some(step) => self.last.insert(key, (step, period)),
            None => self.last.remove(&key),
        };
    }
}

/// Decodes RFC 4648 base32 (any case; spaces and `=` padding ignored).
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b' ' && *c != b'=') {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_decodes_rfc4648_examples() {
        assert_eq!(decode_base32("MZXW6YTBOI======").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode_base32("mzxw6ytb oi").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").as_deref(), Some(&b"12345678901234567890"[..]));
        assert_eq!(decode_base32("MZ1W"), None);
        assert_eq!(decode_base32(""), None);
    }

    #[test]
    fn accepts_the_current_and_previous_step_only() {
        let key = b"12345678901234567890";
        let now = 1_700_000_000;
        let code = code_at(key, now, 30);
        assert_eq!(check(key, &code, now, 30), Some(now / 30));
        assert_eq!(check(key, &code, now + 30, 30), Some(now / 30));
        assert_eq!(check(key, &code, now + 60, 30), None);
        assert_eq!(check(key, "12345", now, 30), None);
        assert_eq!(check(key, "12345a", now, 30), None);
    }

    #[test]
    fn a_step_is_claimed_once_and_can_be_restored() {
        let mut guard = ReplayGuard::default();
        assert_eq!(guard.claim("cam1", "s1", Action::Publish, 100, 30, 3000), Ok(None));
        assert!(guard.used("cam1", "s1", Action::Publish, 100));
        assert!(guard.used("cam1", "s1", Action::Publish, 99));
        assert!(!guard.used("cam1", "s1", Action::Play, 100));
        assert_eq!(guard.claim("cam1", "s1", Action::Publish, 100, 30, 3000), Err(ReplayError::Used));
        assert_eq!(guard.claim("cam1", "s1", Action::Publish, 101, 30, 3030), Ok(Some(100)));
        guard.restore("cam1", "s1", Action::Publish, Some(100), 30);
        assert!(!guard.used("cam1", "s1", Action::Publish, 101));
    }

    #[test]
    fn the_replay_table_stays_bounded() {
        let mut guard = ReplayGuard::default();
        for i in 0..REPLAY_ENTRIES {
            assert!(guard.claim(&format!("sub{i}"), "s1", Action::Play, 100, 30, 3000).is_ok());
        }
        assert_eq!(
            guard.claim("late", "s1", Action::Play, 100, 30, 3000),
            Err(ReplayError::Full),
            "full of live entries"
        );
        assert!(guard.claim("late", "s1", Action::Play, 103, 30, 3090).is_ok(), "old steps age out");
        assert!(guard.last.len() <= REPLAY_ENTRIES);
    }

    #[test]
    fn the_readme_worked_example_holds() {
        let key = derived_key(&app_key(b"s3cret"), "cam1", "stream1", Action::Publish);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "46ec9f9d34900465fec7429c0876acf99749b0e27be9302ace681898b0493fc4");
        assert_eq!(code_at(&key, 1_800_000_000, 60), "141902");
    }

    #[test]
    fn derived_keys_differ_by_subscriber_stream_and_role() {
        let app = app_key(b"app");
        let base = derived_key(&app, "cam1", "s1", Action::Publish);
        assert_ne!(base, derived_key(&app, "cam2", "s1", Action::Publish));
        assert_ne!(base, derived_key(&app, "cam1", "s2", Action::Publish));
        assert_ne!(base, derived_key(&app, "cam1", "s1", Action::Play));
        assert_eq!(
            base,
            hmac::sign(&app, b"cam1s1publish").as_ref(),
            "HMAC-SHA256(secret, subscriberId + streamId + role)"
        );
    }
}
