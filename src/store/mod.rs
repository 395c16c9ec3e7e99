//! The datastore the security pipeline reads: registered broadcasts and rooms, one-time tokens
//! and TOTP subscribers, one store per application, kept on the data partition through the atomic
//! writer so that a consumed one-time token stays consumed across restarts and power cuts. The
//! panel's admin account is kept beside them ([`admin`]).

pub mod admin;
mod snapshot;

use crate::secrets::ct_eq;
use crate::security::Action;
use crate::security::store::{OneTimeToken, SecurityStore, Subscriber, SubscriberKind};
use crate::storage::writer::AtomicWriter;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};

/// A registered stream, with the fields of Ant Media Server's Broadcast object that rampart
/// keeps. Whether it is live is the hub's to say, not the store's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The stream's id, as publishers and players name it.
    pub stream_id: String,
    /// A name for people.
    pub name: String,
    /// AMS's broadcast type: `liveStream` (the only kind rampart makes).
    pub kind: String,
    /// When it was registered, unix milliseconds (AMS's `date`).
    pub created_ms: u64,
}

impl Broadcast {
    /// A live stream `stream_id`, named after itself, registered at `created_ms`.
    pub fn new(stream_id: &str, created_ms: u64) -> Self {
        Broadcast { stream_id: stream_id.into(), name: stream_id.into(), kind: "liveStream".into(), created_ms }
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
    /// The request cannot be kept as it is.
    #[error("{0}")]
    Unfit(&'static str),
    /// The caller may not do this.
    #[error("{0}")]
    Refused(&'static str),
    /// A record with this id exists already.
    #[error("{0} {1:?} exists already")]
    Exists(&'static str, String),
    /// A store file exists but cannot be read back.
    #[error("{0} cannot be read: {1}")]
    Corrupt(String, String),
}

/// Most records of each kind a [`Datastore`] holds.
pub const STORE_LIMIT: usize = 10_000;

#[derive(Default, Clone)]
struct Records {
    broadcasts: HashMap<String, Broadcast>,
    rooms: BTreeSet<String>,
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
        let records = match writer
            .load(&file, &|body| snapshot::decode(body, now).is_ok())
            .map_err(|e| StoreError::Io(e.to_string()))?
        {
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

    /// Registers a broadcast; a taken stream id is refused.
    pub fn add_broadcast(&self, broadcast: Broadcast) -> Result<(), StoreError> {
        self.change(|r| {
            if r.broadcasts.contains_key(&broadcast.stream_id) {
                return Err(StoreError::Exists("stream", broadcast.stream_id));
            }
            bounded(r.broadcasts.len(), "broadcasts")?;
            r.broadcasts.insert(broadcast.stream_id.clone(), broadcast);
            Ok(())
        })
    }

    /// The broadcast `stream_id`, if registered.
    pub fn broadcast(&self, stream_id: &str) -> Option<Broadcast> {
        self.lock().broadcasts.get(stream_id).cloned()
    }

    /// A page of the broadcasts, oldest first.
    pub fn broadcasts(&self, offset: usize, size: usize) -> Vec<Broadcast> {
        let mut all: Vec<Broadcast> = self.lock().broadcasts.values().cloned().collect();
        all.sort_by(|a, b| (a.created_ms, &a.stream_id).cmp(&(b.created_ms, &b.stream_id)));
        all.into_iter().skip(offset).take(size).collect()
    }

    /// Removes a broadcast with its tokens and subscribers; false when it was not registered.
    pub fn delete_broadcast(&self, stream_id: &str) -> Result<bool, StoreError> {
        self.change(|r| {
            r.tokens.retain(|_, t| t.stream_id != stream_id);
            r.subscribers.retain(|(stream, _), _| stream != stream_id);
            Ok(r.broadcasts.remove(stream_id).is_some())
        })
    }

    /// Registers a conference room; a taken room id is refused.
    pub fn add_room(&self, room_id: &str) -> Result<(), StoreError> {
        self.change(|r| {
            if r.rooms.contains(room_id) {
                return Err(StoreError::Exists("room", room_id.to_string()));
            }
            bounded(r.rooms.len(), "rooms")?;
            r.rooms.insert(room_id.to_string());
            Ok(())
        })
    }

    /// A page of the room ids, in order.
    pub fn rooms(&self, offset: usize, size: usize) -> Vec<String> {
        self.lock().rooms.iter().skip(offset).take(size).cloned().collect()
    }

    /// Removes a room; false when it was not registered.
    pub fn delete_room(&self, room_id: &str) -> Result<bool, StoreError> {
        self.change(|r| Ok(r.rooms.remove(room_id)))
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

    /// A page of the subscribers of `stream_id`, by id.
    pub fn subscribers(&self, stream_id: &str, offset: usize, size: usize) -> Vec<Subscriber> {
        let records = self.lock();
        let mut of_stream: Vec<&Subscriber> =
            records.subscribers.values().filter(|s| s.stream_id == stream_id).collect();
        of_stream.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
        of_stream.into_iter().skip(offset).take(size).cloned().collect()
    }

    /// Removes a subscriber; false when it was not registered.
    pub fn delete_subscriber(&self, stream_id: &str, subscriber_id: &str) -> Result<bool, StoreError> {
        self.change(|r| Ok(r.subscribers.remove(&(stream_id.to_string(), subscriber_id.to_string())).is_some()))
    }

    /// Blocks a subscriber from `actions` until `until` (unix seconds); false when not registered.
    pub fn block_subscriber(
        &self,
        stream_id: &str,
        subscriber_id: &str,
        actions: SubscriberKind,
        until: u64,
    ) -> Result<bool, StoreError> {
        self.change(|r| {
            let Some(s) = r.subscribers.get_mut(&(stream_id.to_string(), subscriber_id.to_string())) else {
                return Ok(false);
            };
            if actions.allows(Action::Publish) {
                s.blocked_publish_until = until;
            }
            if actions.allows(Action::Play) {
                s.blocked_play_until = until;
            }
            Ok(true)
        })
    }
}

fn bounded(len: usize, what: &'static str) -> Result<(), StoreError> {
    if len >= STORE_LIMIT { Err(StoreError::Full(STORE_LIMIT, what)) } else { Ok(()) }
}

impl Datastore {
    /// Consumes `token_id` at once, on the calling thread; true only for the one caller that
    /// consumed it.
    pub fn consume_one_time_token_now(&self, token_id: &str) -> bool {
        // Consumed only when that is durable: a token that might work again after a power cut
        // must not admit anyone now.
        self.change(|r| Ok(r.tokens.remove(token_id).is_some())).unwrap_or_else(|e| {
            log::error!("one-time token not consumed, the datastore cannot be written: {e}");
            false
        })
    }
}

impl SecurityStore for Datastore {
    fn stream_registered(&self, stream_id: &str) -> bool {
        self.lock().broadcasts.contains_key(stream_id)
    }

    fn room_registered(&self, room_id: &str) -> bool {
        self.lock().rooms.contains(room_id)
    }

    fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken> {
        let records = self.lock();
        let token = records.tokens.get(token_id)?;
        ct_eq(token.token_id.expose().as_bytes(), token_id.as_bytes()).then(|| token.clone())
    }

    fn consume_one_time_token(&self, token_id: &str) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(std::future::ready(self.consume_one_time_token_now(token_id)))
    }

    fn subscriber(&self, stream_id: &str, subscriber_id: &str) -> Option<Subscriber> {
        self.lock().subscribers.get(&(stream_id.to_string(), subscriber_id.to_string())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

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
        assert!(store.consume_one_time_token_now("t1"));
        assert!(!store.consume_one_time_token_now("t1"));
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
        store.add_broadcast(Broadcast::new("cam", 1_000)).unwrap();
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
        assert!(store.consume_one_time_token_now("used"));
        drop(store);

        let reopened = Datastore::open(dir.path(), "LiveApp", 30).unwrap();
        assert!(reopened.stream_registered("cam") && reopened.room_registered("room1"));
        assert_eq!(reopened.broadcast("cam"), Some(Broadcast::new("cam", 1_000)));
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
        assert!(matches!(store.add_broadcast(Broadcast::new("cam", 0)), Err(StoreError::Io(_))));
        assert!(!store.stream_registered("cam"));
        assert!(!store.consume_one_time_token_now("t1"), "not consumed when that cannot be made durable");
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

    #[test]
    fn a_taken_stream_id_is_refused_and_the_first_kept() {
        let store = Datastore::in_memory();
        store.add_broadcast(Broadcast::new("cam", 1)).unwrap();
        let mut again = Broadcast::new("cam", 2);
        again.name = "other".into();
        assert_eq!(store.add_broadcast(again), Err(StoreError::Exists("stream", "cam".into())));
        assert_eq!(store.broadcast("cam").map(|b| b.created_ms), Some(1));
        assert_eq!(store.add_room("r"), Ok(()));
        assert_eq!(store.add_room("r"), Err(StoreError::Exists("room", "r".into())));
    }

    #[test]
    fn broadcasts_page_oldest_first_and_leave_with_their_tokens() {
        let store = Datastore::in_memory();
        for (id, at) in [("c", 3), ("a", 1), ("b", 2)] {
            store.add_broadcast(Broadcast::new(id, at)).unwrap();
        }
        let ids = |v: Vec<Broadcast>| v.into_iter().map(|b| b.stream_id).collect::<Vec<_>>();
        assert_eq!(ids(store.broadcasts(0, 2)), ["a", "b"]);
        assert_eq!(ids(store.broadcasts(2, 10)), ["c"]);
        let mut t = token("t", 100);
        t.stream_id = "a".into();
        store.add_token(t, 0).unwrap();
        assert_eq!(store.delete_broadcast("a"), Ok(true));
        assert_eq!(store.delete_broadcast("a"), Ok(false));
        assert!(store.one_time_token("t").is_none(), "a deleted broadcast's tokens go with it");
    }

    #[test]
    fn blocking_a_subscriber_blocks_only_the_actions_named() {
        let store = Datastore::in_memory();
        let subscriber = Subscriber {
            subscriber_id: "cam1".into(),
            stream_id: "s1".into(),
            secret: Secret::new(vec![1; 20]),
            kind: SubscriberKind::PublishPlay,
            period: None,
            blocked_publish_until: 0,
            blocked_play_until: 0,
        };
        store.put_subscriber(subscriber).unwrap();
        assert_eq!(store.block_subscriber("s1", "cam1", SubscriberKind::Play, 50), Ok(true));
        assert_eq!(store.block_subscriber("s1", "nobody", SubscriberKind::Play, 50), Ok(false));
        let s = store.subscriber("s1", "cam1").unwrap();
        assert!(s.blocked(Action::Play, 49) && !s.blocked(Action::Play, 50) && !s.blocked(Action::Publish, 0));
        assert_eq!(store.subscribers("s1", 0, 10).len(), 1);
        assert_eq!(store.delete_subscriber("s1", "cam1"), Ok(true));
        assert!(store.subscribers("s1", 0, 10).is_empty());
    }
}
