//! Panel logins: a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) with a CSRF
//! token that every state-changing call must echo in `X-CSRF-Token`. Failed logins are counted
//! per address and account, and per address: they lock out that address (an IPv6 /64), never the
//! right password from another one. Failures for one account from everywhere past a ceiling only
//! slow every login of it down (a delay of at most [`MAX_ACCOUNT_DELAY`]). Sessions are kept in memory by the SHA-256 of their token, so a
//! lookup leaks nothing of a valid token's bytes.

use crate::secrets::{ct_eq, random_token};
use ring::digest;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "rampart_session";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Logins open at once; the oldest is closed to make room.
pub const MAX_SESSIONS: usize = 16;
/// Failed logins for one account from one address that lock that address out of it.
pub const MAX_FAILURES: u32 = 5;
/// Failed logins from one address, whatever the account, that lock the address out.
pub const MAX_ADDRESS_FAILURES: u32 = 20;
/// How long a locked address stays locked, and how long a failure is remembered.
pub const LOCK_DURATION: Duration = Duration::from_secs(300);
/// Failed logins for one account from everywhere after which its logins are slowed down.
pub const ACCOUNT_CEILING: u32 = 20;
/// The longest delay of a login of an account past its ceiling.
pub const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(8);
/// Addresses (and address-account pairs) whose failures are remembered at once.
const MAX_TRACKED: usize = 4096;
/// Characters of an account name kept in the counters.
const MAX_ACCOUNT_CHARS: usize = 64;

struct Session {
    csrf: String,
    expires: Instant,
}

/// Failures of one key: how many, the last one, and the lock they caused.
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn locked_for(&self, now: Instant) -> Option<Duration> {
        self.locked_until.and_then(|until| until.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    fn forgotten(&self, now: Instant) -> bool {
        self.locked_for(now).is_none() && now.saturating_duration_since(self.last) >= LOCK_DURATION
    }
}

/// Failures by key, bounded: forgotten ones go first, then the oldest.
struct Counters<K>(HashMap<K, Failures>);

impl<K> Default for Counters<K> {
    fn default() -> Self {
        Counters(HashMap::new())
    }
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn current(&self, key: &K, now: Instant) -> Option<Failures> {
        self.0.get(key).copied().filter(|f| !f.forgotten(now))
    }

    /// Counts a failure of `key`; true when it reached `limit` and locked the key.
    fn count(&mut self, key: &K, limit: Option<u32>, now: Instant) -> bool {
        if !self.0.contains_key(key) && self.0.len() >= MAX_TRACKED {
            self.0.retain(|_, f| !f.forgotten(now));
            let oldest = (self.0.len() >= MAX_TRACKED).then(|| self.0.iter().min_by_key(|(_, f)| f.last)).flatten();
            if let Some(k) = oldest.map(|(k, _)| k.clone()) {
                self.0.remove(&k);
            }
        }
        let previous = self.current(key, now).map_or(0, |f| f.count);
        let failures = self.0.entry(key.clone()).or_insert(Failures { count: 0, last: now, locked_until: None });
        failures.count = previous.saturating_add(1);
        failures.last = now;
        let locks = limit.is_some_and(|limit| failures.count >= limit);
        if locks {
            failures.count = 0;
            failures.locked_until = now.checked_add(LOCK_DURATION);
        }
        locks
    }
}

#[derive(Default)]
struct State {
    sessions: HashMap<[u8; 32], Session>,
    by_pair: Counters<(IpAddr, String)>,
    by_address: Counters<IpAddr>,
    by_account: Counters<String>,
}

/// Whether a login may be tried now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Yes, after this delay (zero unless the account is past its ceiling).
    After(Duration),
    /// No: this address is locked out of the account for this long.
    Locked(Duration),
}

fn account_key(account: &str) -> String {
    account.chars().take(MAX_ACCOUNT_CHARS).collect()
}

/// A login that was opened: the cookie's token and the CSRF token.
pub struct Opened {
    /// The session token, for the cookie.
    pub token: String,
    /// The CSRF token, for `X-CSRF-Token`.
    pub csrf: String,
}

/// The panel's logins.
#[derive(Default)]
pub struct Logins {
    state: Mutex<State>,
}

impl Logins {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the address block `address` (see [`crate::security::ip_filter::address_block`])
    /// may try a login of `account` now, and after what delay.
    pub fn admission(&self, address: IpAddr, account: &str, now: Instant) -> Admission {
        let state = self.lock();
        let account = account_key(account);
        let pair = state.by_pair.current(&(address, account.clone()), now).and_then(|f| f.locked_for(now));
        let whole = state.by_address.current(&address, now).and_then(|f| f.locked_for(now));
        if let Some(left) = pair.max(whole) {
            return Admission::Locked(left);
        }
        let past = state.by_account.current(&account, now).map_or(0, |f| f.count.saturating_sub(ACCOUNT_CEILING));
        let delay = match past {
            0 => Duration::ZERO,
            n => Duration::from_millis(125u64.saturating_mul(1u64 << n.min(16))).min(MAX_ACCOUNT_DELAY),
        };
        Admission::After(delay)
    }

    /// Counts a failed login of `account` from the address block `address`; true when it locked
    /// the address out.
    pub fn failed(&self, address: IpAddr, account: &str, now: Instant) -> bool {
        let mut state = self.lock();
        let account = account_key(account);
        let pair = state.by_pair.count(&(address, account.clone()), Some(MAX_FAILURES), now);
        let whole = state.by_address.count(&address, Some(MAX_ADDRESS_FAILURES), now);
        // The account's count never locks: it only slows its logins down.
        state.by_account.count(&account, None, now);
        pair | whole
    }

    /// Forgets the failures of `account` from the address block `address` (and the account's),
    /// after the right password.
    pub fn succeeded(&self, address: IpAddr, account: &str) {
        let mut state = self.lock();
        let account = account_key(account);
        state.by_pair.0.remove(&(address, account.clone()));
        state.by_account.0.remove(&account);
    }

    /// Opens a login after the password was checked.
    pub fn open(&self, now: Instant) -> Option<Opened> {
        let (token, csrf) = (random_token(32)?, random_token(32)?);
        let mut state = self.lock();
        state.sessions.retain(|_, s| s.expires > now);
        if state.sessions.len() >= MAX_SESSIONS {
            let oldest = state.sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            oldest.map(|k| state.sessions.remove(&k));
        }
        state.sessions.insert(fingerprint(&token), Session { csrf: csrf.clone(), expires: now + SESSION_LIFETIME });
        Some(Opened { token, csrf })
    }

    /// The CSRF token of the login `token`, if it is open.
    pub fn csrf_of(&self, token: &str, now: Instant) -> Option<String> {
        let state = self.lock();
        state.sessions.get(&fingerprint(token)).filter(|s| s.expires > now).map(|s| s.csrf.clone())
    }

    /// Whether `presented` is the CSRF token of the login `token`.
    pub fn csrf_matches(&self, token: &str, presented: &str, now: Instant) -> bool {
        self.csrf_of(token, now).is_some_and(|csrf| ct_eq(csrf.as_bytes(), presented.as_bytes()))
    }

    /// Closes the login `token`.
    pub fn close(&self, token: &str) {
        self.lock().sessions.remove(&fingerprint(token));
    }
}

/// The session token in a `Cookie` header, if any.
pub fn session_token(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').filter_map(|c| c.trim().split_once('=')).find(|(name, _)| *name == COOKIE).map(|(_, v)| v)
}

/// The `Set-Cookie` value that opens (`Some(token)`) or clears (`None`) a login.
pub fn set_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => {
            format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_LIFETIME.as_secs()
            )
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

fn fingerprint(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_lasts_its_lifetime_and_carries_its_csrf_token() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let opened = logins.open(t0).unwrap();
        assert!(logins.csrf_matches(&opened.token, &opened.csrf, t0));
        assert!(!logins.csrf_matches(&opened.token, "forged", t0));
        assert!(!logins.csrf_matches("other", &opened.csrf, t0));
        assert!(logins.csrf_of(&opened.token, t0 + SESSION_LIFETIME).is_none());
        logins.close(&opened.token);
        assert!(logins.csrf_of(&opened.token, t0).is_none());
    }

    /// The address block of `text`, as the server hands it to the logins.
    fn ip(text: &str) -> IpAddr {
        crate::security::ip_filter::address_block(text.parse().unwrap())
    }

    #[test]
    fn failures_lock_out_the_address_not_the_account() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let (guesser, admin) = (ip("127.0.0.2"), ip("127.0.0.1"));
        for _ in 1..MAX_FAILURES {
            assert!(!logins.failed(guesser, "admin", t0));
        }
        assert!(logins.failed(guesser, "admin", t0));
        assert_eq!(logins.admission(guesser, "admin", t0), Admission::Locked(LOCK_DURATION));
        assert_eq!(logins.admission(admin, "admin", t0), Admission::After(Duration::ZERO));
        assert_eq!(logins.admission(guesser, "admin", t0 + LOCK_DURATION), Admission::After(Duration::ZERO));
        // An IPv6 /64 is one address.
        for _ in 0..MAX_FAILURES {
            logins.failed(ip("2001:db8::1"), "admin", t0);
        }
        assert!(matches!(logins.admission(ip("2001:db8::2"), "admin", t0), Admission::Locked(_)));
        assert_eq!(logins.admission(ip("2001:db8:1::1"), "admin", t0), Admission::After(Duration::ZERO));
    }

    #[test]
    fn an_address_trying_many_accounts_is_locked_out() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let guesser = ip("127.0.0.2");
        for i in 1..MAX_ADDRESS_FAILURES {
            assert!(!logins.failed(guesser, &format!("user{i}"), t0));
        }
        assert!(logins.failed(guesser, "another", t0));
        assert!(matches!(logins.admission(guesser, "admin", t0), Admission::Locked(_)));
    }

    #[test]
    fn failures_from_everywhere_slow_the_account_but_never_lock_it() {
        let logins = Logins::default();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let from = ip(&format!("10.0.{}.{}", i / 256, i % 256));
            logins.failed(from, "admin", t0);
        }
        let clean = ip("127.0.0.1");
        assert_eq!(logins.admission(clean, "admin", t0), Admission::After(MAX_ACCOUNT_DELAY));
        assert_eq!(logins.admission(clean, "other", t0), Admission::After(Duration::ZERO));
        assert_eq!(logins.admission(clean, "admin", t0 + LOCK_DURATION), Admission::After(Duration::ZERO));
        logins.succeeded(clean, "admin");
        assert_eq!(logins.admission(clean, "admin", t0), Admission::After(Duration::ZERO));
    }

    #[test]
    fn the_oldest_login_makes_room() {
        let logins = Logins::default();
        let t0 = Instant::now();
        let first = logins.open(t0).unwrap();
        for i in 1..=MAX_SESSIONS {
            logins.open(t0 + Duration::from_secs(i as u64)).unwrap();
        }
        assert!(logins.csrf_of(&first.token, t0).is_none());
    }

    #[test]
    fn cookies() {
        assert_eq!(session_token("a=b; rampart_session=tok; c=d"), Some("tok"));
        assert_eq!(session_token("a=b"), None);
        assert!(set_cookie(Some("t"), true).ends_with("; Secure"));
        assert!(set_cookie(Some("t"), false).contains("HttpOnly; SameSite=Strict"));
    }
}
