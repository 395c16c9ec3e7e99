//! Panel logins: a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) with a CSRF
//! token that every state-changing call must echo in `X-CSRF-Token`; repeated failed logins lock
//! the account for a while. Sessions are kept in memory by the SHA-256 of their token, so a
//! lookup leaks nothing of a valid token's bytes.

use crate::secrets::{ct_eq, random_token};
use ring::digest;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "rampart_session";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Logins open at once; the oldest is closed to make room.
pub const MAX_SESSIONS: usize = 16;
/// Failed logins in a row that lock the account.
pub const MAX_FAILURES: u32 = 5;
/// How long the account stays locked.
pub const LOCK_DURATION: Duration = Duration::from_secs(300);

struct Session {
    csrf: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    sessions: HashMap<[u8; 32], Session>,
    failures: u32,
    locked_until: Option<Instant>,
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

    /// How long the account stays locked, if it is.
    pub fn locked_for(&self, now: Instant) -> Option<Duration> {
        self.lock().locked_until.and_then(|until| until.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Counts a failed login; true when it locked the account.
    pub fn failed(&self, now: Instant) -> bool {
        let mut state = self.lock();
        state.failures += 1;
        if state.failures < MAX_FAILURES {
            return false;
        }
        state.failures = 0;
        state.locked_until = Some(now + LOCK_DURATION);
        true
    }

    /// Opens a login after the password was checked.
    pub fn open(&self, now: Instant) -> Option<Opened> {
        let (token, csrf) = (random_token(32)?, random_token(32)?);
        let mut state = self.lock();
        state.failures = 0;
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

    #[test]
    fn repeated_failures_lock_the_account() {
        let logins = Logins::default();
        let t0 = Instant::now();
        for _ in 1..MAX_FAILURES {
            assert!(!logins.failed(t0));
        }
        assert!(logins.failed(t0));
        assert_eq!(logins.locked_for(t0), Some(LOCK_DURATION));
        assert_eq!(logins.locked_for(t0 + LOCK_DURATION), None);
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
