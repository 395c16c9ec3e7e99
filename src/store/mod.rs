//! The datastore the security pipeline reads: registered streams and rooms, one-time tokens and
//! TOTP subscribers, one store per application, kept on the data partition through the atomic
//! writer so that a consumed one-time token stays consumed across restarts and power cuts.

mod snapshot;

use crate::config::writer::AtomicWriter;
use crate::secrets::{Secret, ct_eq};
use crate::security::Action;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// A one-time token: good for one publish or play of one stream until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// The token itself, as the client sends it.
    pub token_id: Secret<String>,
    /// The stream it opens.
    pub stream_id: String,
    /// Whether it publishes or plays.
    pub kind: Action,
    /// Unix seconds after which it is refused.
    pub expire_date: u64,
    /// The conference room it is bound to, if any.
    pub room_id: Option<String>,
}

/// Which actions a subscriber may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberKind {
    /// Publish only.
    Publish,
    /// Play only.
    Play,
    /// Both.
    PublishPlay,
}

impl SubscriberKind {
    /// Whether this kind covers `action`.
    pub fn allows(self, action: Action) -> bool {
        matches!(
            (self, action),
            (SubscriberKind::PublishPlay, _)
                | (SubscriberKind::Publish, Action::Publish)
                | (SubscriberKind::Play, Action::Play)
        )
    }
}

/// A TOTP subscriber registered for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The subscriber's name, as the client sends it.
    pub subscriber_id: String,
    /// The stream the subscriber may use.
    pub stream_id: String,
    /// The subscriber's TOTP key (decoded from base32).
    pub secret: Secret<Vec<u8>>,
    /// What the subscriber may do.
    pub kind: SubscriberKind,
    /// The subscriber's own TOTP step in seconds, if not the application's.
    pub period: Option<u32>,
    /// Unix seconds until which publishing is blocked.
    pub blocked_publish_until: u64,
    /// Unix seconds until which playing is blocked.
    pub blocked_play_until: u64,
}

impl Subscriber {
    /// Whether the subscriber is blocked from `action` at `now` (unix seconds).
    pub fn blocked(&self, action: Action, now: u64) -> bool {
        let until = match action {
            Action::Publish => self.blocked_publish_until,
            Action::Play => self.blocked_play_until,
        };
        now < until
    }
}

/// Why the store refused a change or could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store holds as many records of this kind as it may.
    #[error("the datastore is full: at most {0} {1}")]
    Full(usize, &'static str),
    /// The data partition could not be written or read.
    #[error("the datastore cannot be written: {0}")]
    Io(String),
    /// A store file exists but cannot be read back.
    #[error("{0} cannot be read: {1}")]
    Corrupt(String, String),
}

/// What the security pipeline asks of an application's datastore.
pub trait SecurityStore: Send + Sync {
    /// Whether `stream_id` is registered (acceptOnlyStreamsInDataStore).
    fn stream_registered(&self, stream_id: &str) -> bool;
    /// Whether `room_id` is registered (acceptOnlyRoomsInDataStore).
    fn room_registered(&self, room_id: &str) -> bool;
    /// The one-time token `token_id`, if it exists and was not consumed.
    fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken>;
    /// Consumes `token_id`; true only for the one caller that consumed it.
    fn consume_one_time_token(&self, token_id: &str) -> bool;
    /// The subscriber `subscriber_id` of `stream_id`, if registered.
    fn subscriber(&self, stream_id: &str, subscriber_id: &str) -> Option<Subscriber>;
}

/// Most records of each kind a [`Datastore`] holds.
pub const STORE_LIMIT: usize = 10_000;

#[derive(Default, Clone)]
struct Records {
    streams: HashSet<String>,
    rooms: HashSet<String>,
    tokens: HashMap<String, OneTimeToken>,
    subscribers: HashMap<(String, String), Subscriber>,
}

/// Where a datastore keeps its records between starts.
struct Persistence {
    writer: AtomicWriter,
    file: String,
}

/// An application's datastore, with fixed bounds: in memory, or persisted to the data
/// partition through the atomic writer (every change is durable before it takes effect).
#[derive(Default)]
pub struct Datastore {
    records: Mutex<Records>,
    persistence: Option<Persistence>,
}

impl Datastore {
    /// A datastore that forgets everything at exit (tests, benchmarks).
    pub fn in_memory() -> Self {
        Datastore::default()
    }

    /// The datastore of `app` in `data_dir` (`store-<app>.json`), loaded if it exists.
    pub fn open(data_dir: &Path, app: &str, now: u64) -> Result<Self, StoreError> {
        let writer = AtomicWriter::new(data_dir);
        writer.remove_stale_temps().map_err(|e| StoreError::Io(e.to_string()))?;
        let file = format!("store-{app}.json");
        let records = match writer.load(&file).map_err(|e| StoreError::Io(e.to_string()))? {
            Some(loaded) => snapshot::decode(loaded.body(), now).map_err(|e| StoreError::Corrupt(file.clone(), e))?,
            None => Records::default(),
        };
        Ok(Datastore { records: Mutex::new(records), persistence: Some(Persistence { writer, file }) })
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to a copy of the records, makes the copy durable, then makes it current:
    /// a change that cannot be kept changes nothing.
    fn change<T>(&self, change: impl FnOnce(&mut Records) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut records = self.lock();
        let Some(p) = &self.persistence else { return change(&mut records) };
        let mut next = records.clone();
        let result = change(&mut next)?;
        p.writer.write(&p.file, &snapshot::encode(&next)).map_err(|e| StoreError::Io(e.to_string()))?;
        *records = next;
        Ok(result)
    }

    /// Registers a stream.
    pub fn add_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        self.change(|r| {
            bounded(r.streams.len(), "streams")?;
            r.streams.insert(stream_id.to_string());
            Ok(())
        })
    }

    /// Registers a conference room.
    pub fn add_room(&self, room_id: &str) -> Result<(), StoreError> {
        self.change(|r| {
            bounded(r.rooms.len(), "rooms")?;
            r.rooms.insert(room_id.to_string());
            Ok(())
        })
    }

    /// Adds a one-time token; expired tokens are pruned first to make room.
    pub fn add_token(&self, token: OneTimeToken, now: u64) -> Result<(), StoreError> {
        self.change(|r| {
            if r.tokens.len() >= STORE_LIMIT {
                r.tokens.retain(|_, t| t.expire_date > now);
            }
            bounded(r.tokens.len(), "one-time tokens")?;
            r.tokens.insert(token.token_id.expose().clone(), token);
            Ok(())
        })
    }

    /// Deletes every unused token of `stream_id`; returns how many.
    pub fn delete_tokens(&self, stream_id: &str) -> Result<usize, StoreError> {
        self.change(|r| {
            let before = r.tokens.len();
            r.tokens.retain(|_, t| t.stream_id != stream_id);
            Ok(before - r.tokens.len())
        })
    }

    /// Registers or replaces a subscriber.
    pub fn put_subscriber(&self, subscriber: Subscriber) -> Result<(), StoreError> {
        self.change(|r| {
            let key = (subscriber.stream_id.clone(), subscriber.subscriber_id.clone());
            if !r.subscribers.contains_key(&key) {
                bounded(r.subscribers.len(), "subscribers")?;
            }
            r.subscribers.insert(key, subscriber);
            Ok(())
        })
    }
}

fn bounded(len: usize, what: &'static str) -> Result<(), StoreError> {
    if len >= STORE_LIMIT { Err(StoreError::Full(STORE_LIMIT, what)) } else { Ok(()) }
}

impl SecurityStore for Datastore {
    fn stream_registered(&self, stream_id: &str) -> bool {
        self.lock().streams.contains(stream_id)
    }

    fn room_registered(&self, room_id: &str) -> bool {
        self.lock().rooms.contains(room_id)
    }

    fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken> {
        let records = self.lock();
        let token = records.tokens.get(token_id)?;
        ct_eq(token.token_id.expose().as_bytes(), token_id.as_bytes()).then(|| token.clone())
    }

    fn consume_one_time_token(&self, token_id: &str) -> bool {
        // Consumed only when that is durable: a token that might work again after a power cut
        // must not admit anyone now.
        self.change(|r| Ok(r.tokens.remove(token_id).is_some())).unwrap_or_else(|e| {
            log::error!("one-time token not consumed, the datastore cannot be written: {e}");
            false
        })
    }

    fn subscriber(&self, stream_id: &str, subscriber_id: &str) -> Option<Subscriber> {
        self.lock().subscribers.get(&(stream_id.to_string(), subscriber_id.to_string())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, expire_date: u64) -> OneTimeToken {
        OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: "s1".into(),
            kind: Action::Play,
            expire_date,
            room_id: None,
        }
    }

    #[test]
    fn a_token_is_consumed_once() {
        let store = Datastore::in_memory();
        store.add_token(token("t1", 100), 0).unwrap();
        assert!(store.one_time_token("t1").is_some());
        assert!(store.consume_one_time_token("t1"));
        assert!(!store.consume_one_time_token("t1"));
        assert!(store.one_time_token("t1").is_none());
    }

    #[test]
    fn expired_tokens_make_room() {
        let store = Datastore::in_memory();
        for i in 0..STORE_LIMIT {
            store.add_token(token(&format!("old{i}"), 10), 0).unwrap();
        }
        assert_eq!(store.add_token(token("new", 100), 5), Err(StoreError::Full(STORE_LIMIT, "one-time tokens")));
        store.add_token(token("new", 100), 11).unwrap();
        assert!(store.one_time_token("old1").is_none());
    }

    #[test]
    fn a_persistent_store_keeps_everything_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Datastore::open(dir.path(), "LiveApp", 0).unwrap();
        store.add_stream("cam").unwrap();
        store.add_room("room1").unwrap();
        store.add_token(token("kept", 100), 0).unwrap();
        store.add_token(token("used", 100), 0).unwrap();
        store.add_token(token("stale", 20), 0).unwrap();
        let secret = Secret::new(b"subscriber-key".to_vec());
        let subscriber = Subscriber {
            subscriber_id: "cam1".into(),
            stream_id: "cam".into(),
            secret,
            kind: SubscriberKind::PublishPlay,
            period: Some(30),
            blocked_publish_until: 0,
            blocked_play_until: 50,
        };
        store.put_subscriber(subscriber.clone()).unwrap();
        assert!(store.consume_one_time_token("used"));
        drop(store);

        let reopened = Datastore::open(dir.path(), "LiveApp", 30).unwrap();
        assert!(reopened.stream_registered("cam") && reopened.room_registered("room1"));
        assert!(reopened.one_time_token("kept").is_some());
        assert!(reopened.one_time_token("used").is_none(), "a consumed token stays consumed");
        assert!(reopened.one_time_token("stale").is_none(), "expired tokens are pruned");
        assert_eq!(reopened.subscriber("cam", "cam1"), Some(subscriber));
        assert!(
            Datastore::open(dir.path(), "OtherApp", 0).unwrap().one_time_token("kept").is_none(),
            "one store per app"
        );
    }

    #[test]
    fn a_change_that_cannot_be_kept_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Datastore::open(dir.path(), "LiveApp", 0).unwrap();
        store.add_token(token("t1", 100), 0).unwrap();
        let data = dir.path().to_path_buf();
        std::fs::remove_dir_all(&data).unwrap();
        assert!(matches!(store.add_stream("cam"), Err(StoreError::Io(_))));
        assert!(!store.stream_registered("cam"));
        assert!(!store.consume_one_time_token("t1"), "not consumed when that cannot be made durable");
        assert!(store.one_time_token("t1").is_some());
    }

    #[test]
    fn a_corrupt_store_file_stops_the_open_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store-LiveApp.json"), "{not json").unwrap();
        let err = Datastore::open(dir.path(), "LiveApp", 0).err().unwrap();
        assert!(err.to_string().starts_with("store-LiveApp.json cannot be read"), "{err}");
    }

    #[test]
    fn deleting_a_streams_tokens_keeps_the_others() {
        let store = Datastore::in_memory();
        store.add_token(token("a", 100), 0).unwrap();
        let mut other = token("b", 100);
        other.stream_id = "s2".into();
        store.add_token(other, 0).unwrap();
        assert_eq!(store.delete_tokens("s1"), Ok(1));
        assert!(store.one_time_token("a").is_none());
        assert!(store.one_time_token("b").is_some());
    }
}
