//! Live sessions and what admitted them, so that deleting a stream's tokens or blocking a
//! subscriber ends the sessions those credentials admitted.

use super::Grant;
use atomic_waker::AtomicWaker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

struct Entry {
    app: String,
    stream: String,
    by_one_time_token: bool,
    subscriber: Option<String>,
    revoked: Arc<Revocation>,
}

/// Whether a session's credentials were revoked, and the one task that waits for it. A
/// player's task polls it on every wake, per frame: an atomic load, where a `Notify` took a
/// lock and a place in its waiter list each time.
#[derive(Default)]
struct Revocation {
    revoked: AtomicBool,
    waker: AtomicWaker,
}

impl Revocation {
    fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// Every live session that credentials admitted.
#[derive(Default)]
pub struct Sessions {
    entries: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
}

/// A session's place in [`Sessions`]; dropping it forgets the session.
pub struct SessionHandle {
    id: u64,
    sessions: Arc<Sessions>,
    revoked: Arc<Revocation>,
}

impl SessionHandle {
    /// Completes when the credentials that admitted the session are revoked. One task waits.
    pub async fn revoked(&self) {
        std::future::poll_fn(|cx| {
            self.revoked.waker.register(cx.waker());
            if self.revoked.revoked.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

impl Sessions {
    /// Remembers a session of `app/stream` admitted by `grant`.
    pub fn register(self: &Arc<Self>, app: &str, stream: &str, grant: &Grant) -> SessionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let revoked = Arc::new(Revocation::default());
        let entry = Entry {
            app: app.to_string(),
            stream: stream.to_string(),
            by_one_time_token: grant.one_time_token.is_some(),
            subscriber: grant.subscriber_id.clone(),
            revoked: revoked.clone(),
        };
        self.lock().insert(id, entry);
        SessionHandle { id, sessions: self.clone(), revoked }
    }

    /// Ends the sessions of `app/stream` that one-time tokens admitted (the stream's tokens were
    /// deleted); returns how many.
    pub fn revoke_one_time_tokens(&self, app: &str, stream: &str) -> usize {
        self.revoke(|e| e.app == app && e.stream == stream && e.by_one_time_token)
    }

    /// Ends the sessions of `app/stream` admitted by TOTP subscriber `subscriber`; returns how many.
    pub fn block_subscriber(&self, app: &str, stream: &str, subscriber: &str) -> usize {
        self.revoke(|e| e.app == app && e.stream == stream && e.subscriber.as_deref() == Some(subscriber))
    }

    /// Ends every session of `app/stream`, its publisher's and its players' (the stream was
    /// stopped or deleted); returns how many.
    pub fn end_stream(&self, app: &str, stream: &str) -> usize {
        self.revoke(|e| e.app == app && e.stream == stream)
    }

    /// Sessions known now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn revoke(&self, matches: impl Fn(&Entry) -> bool) -> usize {
        let entries = self.lock();
        let hit: Vec<&Entry> = entries.values().filter(|e| matches(e)).collect();
        for entry in &hit {
            entry.revoked.revoke();
        }
        hit.len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_a_streams_tokens_ends_only_its_token_sessions() {
        let sessions = Arc::new(Sessions::default());
        let by_token = Grant { one_time_token: Some(crate::secrets::Secret::new("t1".into())), ..Grant::default() };
        let a = sessions.register("LiveApp", "s1", &by_token);
        let _open = sessions.register("LiveApp", "s1", &Grant::default());
        let _other = sessions.register("LiveApp", "s2", &by_token);
        assert_eq!(sessions.revoke_one_time_tokens("LiveApp", "s1"), 1);
        assert_eq!(sessions.revoke_one_time_tokens("Other", "s1"), 0);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), a.revoked()).await }).unwrap();
        drop(a);
        assert_eq!(sessions.len(), 2);
    }

    #[test]
    fn blocking_a_subscriber_ends_its_sessions() {
        let sessions = Arc::new(Sessions::default());
        let grant = Grant { subscriber_id: Some("cam1".into()), ..Grant::default() };
        let _a = sessions.register("LiveApp", "s1", &grant);
        assert_eq!(sessions.block_subscriber("LiveApp", "s1", "cam1"), 1);
        assert_eq!(sessions.block_subscriber("LiveApp", "s2", "cam1"), 0);
        assert_eq!(sessions.end_stream("LiveApp", "s1"), 1);
    }
}
