//! The datastore the security pipeline reads: registered broadcasts and rooms, one-time tokens
//! and TOTP subscribers, one store per application, kept on the data partition as a snapshot and
//! a journal of changes since ([`crate::storage::journal`]) so that a consumed one-time token
//! stays consumed across restarts and power cuts. The panel's admin account is kept beside them
//! ([`admin`]). No secret is kept in clear: a one-time token only as the SHA-256 of its id
//! ([`token`]), a subscriber's TOTP key sealed with the box's keyring ([`keys`]); what older
//! versions wrote in clear is hashed or sealed, and the store written again, at open.
//!
//! Reads are in memory, under a short lock. A change is checked, made durable as one journal
//! record on the storage worker, and only then applied: a change that cannot be made durable
//! changes nothing. Changes other than consumes take turns; consumes do not, so that tokens
//! consumed close together share one fdatasync (group commit).

pub mod admin;
mod change;
mod keys;
mod snapshot;
mod token;

pub use token::{KeptToken, TokenHash};

use crate::secrets::{Keyring, Unopenable};
use crate::security::Action;
use crate::security::store::{Consuming, OneTimeToken, SecurityStore, Subscriber, SubscriberKind};
use crate::storage::Storage;
use crate::storage::journal::{Journal, JournalError, Names, Snapshot};
use change::Change;
use keys::{KeptSubscriber, Keys};
use snapshot::Rewrite;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// A subscriber's TOTP key cannot be sealed (no data key is open): it is not registered.
    #[error("the TOTP key cannot be sealed, so the subscriber is not registered: {0}")]
    Unsealable(String),
}

/// Most records of each kind a [`Datastore`] holds.
pub const STORE_LIMIT: usize = 10_000;

#[derive(Default, Clone)]
struct Records {
    broadcasts: HashMap<String, Broadcast>,
    rooms: BTreeSet<String>,
    tokens: HashMap<TokenHash, KeptToken>,
    subscribers: HashMap<(String, String), KeptSubscriber>,
}

impl Records {
    fn prune_expired_tokens(&mut self, now: u64) {
        self.tokens.retain(|_, t| t.expire_date > now);
    }
}

#[derive(Default)]
struct State {
    records: Records,
    /// Tokens whose consume is being made durable: no other consumer may have them.
    consuming: HashSet<TokenHash>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a change decided: the record to make durable (none when nothing changes), and the
/// answer once it is.
type Decided<T> = Result<(Option<Change>, T), StoreError>;

/// An application's datastore, with fixed bounds: in memory, or journaled on the data
/// partition through the storage worker (every change is durable before it takes effect).
pub struct Datastore {
    state: Arc<Mutex<State>>,
    journal: Option<Journal>,
    /// Seals and opens the subscribers' TOTP keys.
    keys: Arc<Keys>,
    /// Changes other than consumes take turns: each is checked against the records it applies to.
    one_change: tokio::sync::Mutex<()>,
}

impl Datastore {
    /// A datastore that forgets everything at exit (tests, benchmarks); its subscribers' keys
    /// are sealed with a data key of its own, kept nowhere.
    pub fn in_memory() -> Self {
        Datastore {
            state: Arc::default(),
            journal: None,
            keys: Arc::new(Keys::in_memory()),
            one_change: tokio::sync::Mutex::default(),
        }
    }

    /// The datastore of `app` in `data_dir` (`store-<app>.json` and `store-<app>.journal`),
    /// loaded on the storage worker if it exists; a store written whole by earlier versions
    /// loads as the snapshot. Tokens expired by `now` are dropped. Subscribers' keys are sealed
    /// and opened with `keyring`; one that does not open is logged, and its subscriber's TOTP
    /// refuses ([`Datastore::unopenable`]). What older versions kept in clear (token ids, TOTP
    /// keys) is hashed or sealed, and the store written again at once so that none stays.
    pub async fn open(
        storage: &Storage,
        data_dir: &Path,
        app: &str,
        now: u64,
        keyring: Arc<Keyring>,
    ) -> Result<Self, StoreError> {
        let names = Names { snapshot: format!("store-{app}.json"), journal: format!("store-{app}.journal") };
        let state = Arc::new(Mutex::new(State::default()));
        let seen = state.clone();
        let snapshot: Snapshot = Box::new(move || {
            let records = lock(&seen).records.clone();
            snapshot::encode(&records)
        });
        let parses = snapshot::parses;
        let (journal, loaded) =
            Journal::open(storage, data_dir, names.clone(), parses, snapshot).await.map_err(|e| match e {
                JournalError::Corrupt { name, why } => StoreError::Corrupt(name, why),
                other => StoreError::Io(other.to_string()),
            })?;
        let keys = Arc::new(Keys::new(keyring, app));
        let mut rewrite = Rewrite::default();
        let mut records = match &loaded.snapshot {
            Some(file) => snapshot::decode(file.body(), now, &keys, &mut rewrite)
                .map_err(|e| StoreError::Corrupt(names.snapshot.clone(), e))?,
            None => Records::default(),
        };
        for record in loaded.records {
            Change::decode(&record)
                .and_then(|change| change.apply(&mut records, &keys, &mut rewrite))
                .map_err(|e| StoreError::Corrupt(names.journal.clone(), e))?;
        }
        records.prune_expired_tokens(now);
        if loaded.torn_bytes > 0 {
            log::warn!("{}: cut off {} bytes a power cut left half-written", names.journal, loaded.torn_bytes);
        }
        lock(&state).records = records;
        let store = Datastore { state, journal: Some(journal), keys, one_change: tokio::sync::Mutex::default() };
        for Unopenable { place, key, why } in store.unopenable() {
            log::error!("{place}: the {key} does not open, its TOTP refuses: {why}");
        }
        if rewrite.needed() {
            let what = format!(
                "{} token id(s) hashed and {} TOTP key(s) sealed afresh (kept in clear or under an older data key)",
                rewrite.token_ids, rewrite.totp_keys
            );
            match store.compact().await {
                Ok(()) => log::info!("{}: {what}; the datastore was written again", names.snapshot),
                // The store works from memory; the old values stay on disk until a compaction succeeds.
                Err(e) => log::warn!("{}: {what}, but the datastore could not be written again: {e}", names.snapshot),
            }
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Decides a change on the records as they are, makes it durable, then applies it; one
    /// change at a time.
    async fn change<T>(&self, decide: impl FnOnce(&mut Records) -> Decided<T>) -> Result<T, StoreError> {
        let _turn = self.one_change.lock().await;
        let (change, answer) = decide(&mut self.lock().records)?;
        if let Some(change) = change {
            self.commit(change).await?;
        }
        Ok(answer)
    }

    /// Makes `change` durable, then applies it (at once for a store in memory).
    async fn commit(&self, change: Change) -> Result<(), StoreError> {
        let Some(journal) = &self.journal else {
            return change.apply(&mut self.lock().records, &self.keys, &mut Rewrite::default()).map_err(StoreError::Io);
        };
        let (state, keys) = (self.state.clone(), self.keys.clone());
        let record = change.encode();
        let apply = move || {
            if let Err(e) = change.apply(&mut lock(&state).records, &keys, &mut Rewrite::default()) {
                log::error!("a journaled change could not be applied: {e}");
            }
        };
        journal.append(&record, apply).await.map_err(|e| StoreError::Io(e.to_string()))
    }

    /// Writes the whole store as its snapshot and starts a fresh journal (done by itself once
    /// the journal is past its bound).
    pub async fn compact(&self) -> Result<(), StoreError> {
        match &self.journal {
            Some(journal) => journal.compact().await.map_err(|e| StoreError::Io(e.to_string())),
            None => Ok(()),
        }
    }

    /// Registers a broadcast; a taken stream id is refused.
    pub async fn add_broadcast(&self, broadcast: Broadcast) -> Result<(), StoreError> {
        self.change(|r| {
            if r.broadcasts.contains_key(&broadcast.stream_id) {
                return Err(StoreError::Exists("stream", broadcast.stream_id));
            }
            bounded(r.broadcasts.len(), "broadcasts")?;
            Ok((Some(Change::BroadcastAdded(snapshot::BroadcastRecord::of(&broadcast))), ()))
        })
        .await
    }

    /// The broadcast `stream_id`, if registered.
    pub fn broadcast(&self, stream_id: &str) -> Option<Broadcast> {
        self.lock().records.broadcasts.get(stream_id).cloned()
    }

    /// A page of the broadcasts, oldest first.
    pub fn broadcasts(&self, offset: usize, size: usize) -> Vec<Broadcast> {
        let mut all: Vec<Broadcast> = self.lock().records.broadcasts.values().cloned().collect();
        all.sort_by(|a, b| (a.created_ms, &a.stream_id).cmp(&(b.created_ms, &b.stream_id)));
        all.into_iter().skip(offset).take(size).collect()
    }

    /// Removes a broadcast with its tokens and subscribers; false when it was not registered.
    pub async fn delete_broadcast(&self, stream_id: &str) -> Result<bool, StoreError> {
        self.change(|r| {
            let registered = r.broadcasts.contains_key(stream_id);
            let leftovers = r.tokens.values().any(|t| t.stream_id == stream_id)
                || r.subscribers.keys().any(|(stream, _)| stream == stream_id);
            let change = (registered || leftovers).then(|| Change::BroadcastDeleted { stream_id: stream_id.into() });
            Ok((change, registered))
        })
        .await
    }

    /// Registers a conference room; a taken room id is refused.
    pub async fn add_room(&self, room_id: &str) -> Result<(), StoreError> {
        self.change(|r| {
            if r.rooms.contains(room_id) {
                return Err(StoreError::Exists("room", room_id.to_string()));
            }
            bounded(r.rooms.len(), "rooms")?;
            Ok((Some(Change::RoomAdded { room_id: room_id.into() }), ()))
        })
        .await
    }

    /// A page of the room ids, in order.
    pub fn rooms(&self, offset: usize, size: usize) -> Vec<String> {
        self.lock().records.rooms.iter().skip(offset).take(size).cloned().collect()
    }

    /// Removes a room; false when it was not registered.
    pub async fn delete_room(&self, room_id: &str) -> Result<bool, StoreError> {
        self.change(|r| {
            let registered = r.rooms.contains(room_id);
            Ok((registered.then(|| Change::RoomDeleted { room_id: room_id.into() }), registered))
        })
        .await
    }

    /// Adds a one-time token, kept as the hash of its id; expired tokens are pruned first to
    /// make room.
    pub async fn add_token(&self, token: OneTimeToken, now: u64) -> Result<(), StoreError> {
        let kept = KeptToken::of(&token);
        self.change(|r| {
            if r.tokens.len() >= STORE_LIMIT {
                // Expired tokens are dropped at every load too: no record needed.
                r.prune_expired_tokens(now);
            }
            bounded(r.tokens.len(), "one-time tokens")?;
            Ok((Some(Change::TokenAdded(snapshot::TokenRecord::of(&kept))), ()))
        })
        .await
    }

    /// Deletes every unused token of `stream_id`; returns how many.
    pub async fn delete_tokens(&self, stream_id: &str) -> Result<usize, StoreError> {
        let consuming = self.lock().consuming.clone();
        self.change(|r| {
            let unused = r.tokens.values().filter(|t| t.stream_id == stream_id);
            let deleted = unused.filter(|t| !consuming.contains(&t.hash)).count();
            Ok(((deleted > 0).then(|| Change::TokensDeleted { stream_id: stream_id.into() }), deleted))
        })
        .await
    }

    /// A page of the unused tokens of `stream_id` (their hashes, never their ids), soonest
    /// expiring first.
    pub fn tokens(&self, stream_id: &str, offset: usize, size: usize) -> Vec<KeptToken> {
        let state = self.lock();
        let mut of_stream: Vec<&KeptToken> =
            state.records.tokens.values().filter(|t| t.stream_id == stream_id).collect();
        of_stream.sort_by_key(|t| (t.expire_date, t.hash));
        of_stream.into_iter().skip(offset).take(size).cloned().collect()
    }

    /// Registers or replaces a subscriber, its key sealed afresh (so that a subscriber whose key
    /// did not open works again); refused when the key cannot be sealed.
    pub async fn put_subscriber(&self, subscriber: Subscriber) -> Result<(), StoreError> {
        let kept = KeptSubscriber::sealed(subscriber, &self.keys).map_err(StoreError::Unsealable)?;
        let subscriber = &kept.subscriber;
        self.change(|r| {
            let key = (subscriber.stream_id.clone(), subscriber.subscriber_id.clone());
            if !r.subscribers.contains_key(&key) {
                bounded(r.subscribers.len(), "subscribers")?;
            }
            Ok((Some(Change::SubscriberPut(snapshot::SubscriberRecord::of(&kept))), ()))
        })
        .await
    }

    /// A page of the subscribers of `stream_id`, by id.
    pub fn subscribers(&self, stream_id: &str, offset: usize, size: usize) -> Vec<Subscriber> {
        let state = self.lock();
        let mut of_stream: Vec<&Subscriber> =
            state.records.subscribers.values().map(|k| &k.subscriber).filter(|s| s.stream_id == stream_id).collect();
        of_stream.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
        of_stream.into_iter().skip(offset).take(size).cloned().collect()
    }

    /// Removes a subscriber; false when it was not registered.
    pub async fn delete_subscriber(&self, stream_id: &str, subscriber_id: &str) -> Result<bool, StoreError> {
        self.change(|r| {
            let registered = r.subscribers.contains_key(&(stream_id.to_string(), subscriber_id.to_string()));
            let change = Change::SubscriberDeleted { stream_id: stream_id.into(), subscriber_id: subscriber_id.into() };
            Ok((registered.then_some(change), registered))
        })
        .await
    }

    /// Blocks a subscriber from `actions` until `until` (unix seconds); false when not registered.
    pub async fn block_subscriber(
        &self,
        stream_id: &str,
        subscriber_id: &str,
        actions: SubscriberKind,
        until: u64,
    ) -> Result<bool, StoreError> {
        self.change(|r| {
            let registered = r.subscribers.contains_key(&(stream_id.to_string(), subscriber_id.to_string()));
            let change = Change::SubscriberBlocked {
                stream_id: stream_id.into(),
                subscriber_id: subscriber_id.into(),
                publish_until: actions.allows(Action::Publish).then_some(until),
                play_until: actions.allows(Action::Play).then_some(until),
            };
            Ok((registered.then_some(change), registered))
        })
        .await
    }

    /// The subscribers' keys that do not open (another TPM, an altered value), and why: their
    /// TOTP refuses until they are registered again.
    pub fn unopenable(&self) -> Vec<Unopenable> {
        let state = self.lock();
        let mut found: Vec<Unopenable> = state
            .records
            .subscribers
            .values()
            .filter_map(|kept| {
                let s = &kept.subscriber;
                Some(Unopenable {
                    place: format!("the datastore of {}", self.keys.app()),
                    key: format!("TOTP key of subscriber {} of stream {}", s.subscriber_id, s.stream_id),
                    why: kept.unopenable()?.to_string(),
                })
            })
            .collect();
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found
    }

    /// Consumes `token_id` once that is durable; true only for the one caller that consumed it.
    /// Consumes do not take turns: those close together share one fdatasync. The token is
    /// marked as being consumed first, so that a concurrent consumer loses; if the consume
    /// cannot be made durable the mark goes, the token stays usable, and the answer is false.
    pub fn consume_one_time_token_durably(&self, token_id: &str) -> Consuming<'_> {
        let hash = TokenHash::of(token_id);
        Box::pin(async move {
            {
                let mut state = self.lock();
                if !state.records.tokens.contains_key(&hash) || !state.consuming.insert(hash) {
                    return Ok(false);
                }
            }
            // Dropped when done, failed or abandoned: a consumed token is gone from the records.
            let _mark = ConsumeMark { state: &self.state, hash };
            let change = Change::TokenConsumed { token: snapshot::TokenName::of(&hash) };
            self.commit(change).await.map(|()| true).map_err(|e| {
                // A token that might work again after a power cut must not admit anyone now.
                log::error!("one-time token not consumed, the datastore cannot be written: {e}");
                e.to_string()
            })
        })
    }
}

/// A token being consumed; the mark goes when this is dropped.
struct ConsumeMark<'a> {
    state: &'a Mutex<State>,
    hash: TokenHash,
}

impl Drop for ConsumeMark<'_> {
    fn drop(&mut self) {
        lock(self.state).consuming.remove(&self.hash);
    }
}

fn bounded(len: usize, what: &'static str) -> Result<(), StoreError> {
    if len >= STORE_LIMIT { Err(StoreError::Full(STORE_LIMIT, what)) } else { Ok(()) }
}

impl SecurityStore for Datastore {
    fn stream_registered(&self, stream_id: &str) -> bool {
        self.lock().records.broadcasts.contains_key(stream_id)
    }

    fn room_registered(&self, room_id: &str) -> bool {
        self.lock().records.rooms.contains(room_id)
    }

    fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken> {
        // Looked up by its hash: what the lookup's timing could tell is of the hash, which
        // an attacker cannot steer towards an id.
        let hash = TokenHash::of(token_id);
        let state = self.lock();
        if state.consuming.contains(&hash) {
            return None;
        }
        state.records.tokens.get(&hash).map(|token| token.presented(token_id))
    }

    fn consume_one_time_token(&self, token_id: &str) -> Consuming<'_> {
        self.consume_one_time_token_durably(token_id)
    }

    fn subscriber(&self, stream_id: &str, subscriber_id: &str) -> Option<Subscriber> {
        let state = self.lock();
        state.records.subscribers.get(&(stream_id.to_string(), subscriber_id.to_string())).map(|k| k.subscriber.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use crate::secrets::file::KeyFile;
    use crate::secrets::keyring::Mint;
    use crate::security::store::SubscriberKey;
    use crate::storage::fs::{CountingFs, RealFs};
    use crate::storage::sim::{Ignore, SimFs, Tail};
    use crate::storage::writer::AtomicWriter;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn storage() -> Storage {
        Storage::start(Arc::new(RealFs)).unwrap()
    }

    /// The keyring of `dir` (a key file), the same at every open.
    fn keyring_of(dir: &Path) -> Arc<Keyring> {
        Arc::new(Keyring::load(&KeyFile, &RealFs, dir, Mint::IfNoneOpens))
    }

    /// The store of `app` in `dir`, with the keyring of `dir`.
    async fn open_in(dir: &Path, app: &str, now: u64) -> Result<Datastore, StoreError> {
        Datastore::open(&storage(), dir, app, now, keyring_of(dir)).await
    }

    fn token(id: &str, expire_date: u64) -> OneTimeToken {
        OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: "s1".into(),
            kind: Action::Play,
            expire_date,
            room_id: None,
        }
    }

    #[tokio::test]
    async fn a_token_is_consumed_once() {
        let store = Datastore::in_memory();
        store.add_token(token("t1", 100), 0).await.unwrap();
        assert!(store.one_time_token("t1").is_some());
        assert!(store.consume_one_time_token_durably("t1").await.unwrap_or(false));
        assert!(!store.consume_one_time_token_durably("t1").await.unwrap_or(false));
        assert!(store.one_time_token("t1").is_none());
    }

    #[tokio::test]
    async fn expired_tokens_make_room() {
        let store = Datastore::in_memory();
        for i in 0..STORE_LIMIT {
            store.add_token(token(&format!("old{i}"), 10), 0).await.unwrap();
        }
        assert_eq!(store.add_token(token("new", 100), 5).await, Err(StoreError::Full(STORE_LIMIT, "one-time tokens")));
        store.add_token(token("new", 100), 11).await.unwrap();
        assert!(store.one_time_token("old1").is_none());
    }

    #[tokio::test]
    async fn a_persistent_store_keeps_everything_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        store.add_broadcast(Broadcast::new("cam", 1_000)).await.unwrap();
        store.add_room("room1").await.unwrap();
        store.add_token(token("kept", 100), 0).await.unwrap();
        store.add_token(token("used", 100), 0).await.unwrap();
        store.add_token(token("stale", 20), 0).await.unwrap();
        let secret = SubscriberKey::Open(Secret::new(b"subscriber-key".to_vec()));
        let subscriber = Subscriber {
            subscriber_id: "cam1".into(),
            stream_id: "cam".into(),
            secret,
            kind: SubscriberKind::PublishPlay,
            period: Some(30),
            blocked_publish_until: 0,
            blocked_play_until: 50,
        };
        store.put_subscriber(subscriber.clone()).await.unwrap();
        assert!(store.consume_one_time_token_durably("used").await.unwrap_or(false));
        drop(store);

        let reopened = open_in(dir.path(), "LiveApp", 30).await.unwrap();
        assert!(reopened.stream_registered("cam") && reopened.room_registered("room1"));
        assert_eq!(reopened.broadcast("cam"), Some(Broadcast::new("cam", 1_000)));
        assert!(reopened.one_time_token("kept").is_some());
        assert!(reopened.one_time_token("used").is_none(), "a consumed token stays consumed");
        assert!(reopened.one_time_token("stale").is_none(), "expired tokens are pruned");
        assert_eq!(reopened.subscriber("cam", "cam1"), Some(subscriber));
        assert!(
            open_in(dir.path(), "OtherApp", 0).await.unwrap().one_time_token("kept").is_none(),
            "one store per app"
        );
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_kept_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        store.add_token(token("t1", 100), 0).await.unwrap();
        let data = dir.path().to_path_buf();
        std::fs::remove_dir_all(&data).unwrap();
        assert!(matches!(store.add_broadcast(Broadcast::new("cam", 0)).await, Err(StoreError::Io(_))));
        assert!(!store.stream_registered("cam"));
        assert!(
            !store.consume_one_time_token_durably("t1").await.unwrap_or(false),
            "not consumed when that cannot be made durable"
        );
        assert!(store.one_time_token("t1").is_some());
    }

    #[tokio::test]
    async fn a_corrupt_store_file_stops_the_open_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store-LiveApp.json"), "{not json").unwrap();
        let err = open_in(dir.path(), "LiveApp", 0).await.err().unwrap();
        assert!(err.to_string().starts_with("store-LiveApp.json cannot be read"), "{err}");
    }

    #[tokio::test]
    async fn deleting_a_streams_tokens_keeps_the_others() {
        let store = Datastore::in_memory();
        store.add_token(token("a", 100), 0).await.unwrap();
        let mut other = token("b", 100);
        other.stream_id = "s2".into();
        store.add_token(other, 0).await.unwrap();
        assert_eq!(store.delete_tokens("s1").await, Ok(1));
        assert!(store.one_time_token("a").is_none());
        assert!(store.one_time_token("b").is_some());
    }

    #[tokio::test]
    async fn a_taken_stream_id_is_refused_and_the_first_kept() {
        let store = Datastore::in_memory();
        store.add_broadcast(Broadcast::new("cam", 1)).await.unwrap();
        let mut again = Broadcast::new("cam", 2);
        again.name = "other".into();
        assert_eq!(store.add_broadcast(again).await, Err(StoreError::Exists("stream", "cam".into())));
        assert_eq!(store.broadcast("cam").map(|b| b.created_ms), Some(1));
        assert_eq!(store.add_room("r").await, Ok(()));
        assert_eq!(store.add_room("r").await, Err(StoreError::Exists("room", "r".into())));
    }

    #[tokio::test]
    async fn broadcasts_page_oldest_first_and_leave_with_their_tokens() {
        let store = Datastore::in_memory();
        for (id, at) in [("c", 3), ("a", 1), ("b", 2)] {
            store.add_broadcast(Broadcast::new(id, at)).await.unwrap();
        }
        let ids = |v: Vec<Broadcast>| v.into_iter().map(|b| b.stream_id).collect::<Vec<_>>();
        assert_eq!(ids(store.broadcasts(0, 2)), ["a", "b"]);
        assert_eq!(ids(store.broadcasts(2, 10)), ["c"]);
        let mut t = token("t", 100);
        t.stream_id = "a".into();
        store.add_token(t, 0).await.unwrap();
        assert_eq!(store.delete_broadcast("a").await, Ok(true));
        assert_eq!(store.delete_broadcast("a").await, Ok(false));
        assert!(store.one_time_token("t").is_none(), "a deleted broadcast's tokens go with it");
    }

    #[tokio::test]
    async fn blocking_a_subscriber_blocks_only_the_actions_named() {
        let store = Datastore::in_memory();
        let subscriber = Subscriber {
            subscriber_id: "cam1".into(),
            stream_id: "s1".into(),
            secret: SubscriberKey::Open(Secret::new(vec![1; 20])),
            kind: SubscriberKind::PublishPlay,
            period: None,
            blocked_publish_until: 0,
            blocked_play_until: 0,
        };
        store.put_subscriber(subscriber).await.unwrap();
        assert_eq!(store.block_subscriber("s1", "cam1", SubscriberKind::Play, 50).await, Ok(true));
        assert_eq!(store.block_subscriber("s1", "nobody", SubscriberKind::Play, 50).await, Ok(false));
        let s = store.subscriber("s1", "cam1").unwrap();
        assert!(s.blocked(Action::Play, 49) && !s.blocked(Action::Play, 50) && !s.blocked(Action::Publish, 0));
        assert_eq!(store.subscribers("s1", 0, 10).len(), 1);
        assert_eq!(store.delete_subscriber("s1", "cam1").await, Ok(true));
        assert!(store.subscribers("s1", 0, 10).is_empty());
    }

    #[tokio::test]
    async fn of_concurrent_consumers_of_one_token_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        store.add_token(token("t1", 100), 0).await.unwrap();
        let both = tokio::join!(store.consume_one_time_token_durably("t1"), store.consume_one_time_token_durably("t1"));
        assert!(matches!(both, (Ok(true), Ok(false)) | (Ok(false), Ok(true))), "exactly one admitted: {both:?}");
        assert!(store.one_time_token("t1").is_none());
    }

    /// A journaled store on a simulated disk, its storage worker and the disk.
    async fn on_sim(fs: Arc<SimFs>) -> Result<Datastore, StoreError> {
        let storage = Storage::start(fs).unwrap();
        Datastore::open(&storage, Path::new("/data"), "LiveApp", 0, Arc::new(Keyring::ephemeral())).await
    }

    #[tokio::test]
    async fn a_consumed_token_stays_consumed_across_a_power_cut_at_any_moment() {
        let calls = {
            let fs = Arc::new(SimFs::new(Ignore::Nothing));
            let store = on_sim(fs.clone()).await.unwrap();
            store.add_token(token("t1", 100), 0).await.unwrap();
            let before = fs.calls();
            assert!(store.consume_one_time_token_durably("t1").await.unwrap_or(false));
            fs.calls() - before
        };
        for cut in 0..=calls {
            for tail in Tail::all(40) {
                let fs = Arc::new(SimFs::new(Ignore::Nothing));
                let store = on_sim(fs.clone()).await.unwrap();
                store.add_token(token("t1", 100), 0).await.unwrap();
                fs.cut_power_after(cut);
                let consumed = store.consume_one_time_token_durably("t1").await.unwrap_or(false);
                assert_eq!(consumed, cut == calls, "consumed only once durable (cut {cut})");
                let after = on_sim(Arc::new(fs.after_power_cut(tail))).await.unwrap();
                if consumed {
                    assert!(after.one_time_token("t1").is_none(), "cut {cut}, {tail:?}: consumed stays consumed");
                }
                assert_eq!(store.one_time_token("t1").is_none(), consumed, "a failed consume leaves the token usable");
            }
        }
    }

    #[tokio::test]
    async fn consumes_in_a_burst_share_one_fdatasync() {
        const BURST: usize = 100;
        let dir = tempfile::tempdir().unwrap();
        let counting = Arc::new(CountingFs::new(RealFs));
        let storage = Storage::start(counting.clone()).unwrap();
        let store =
            Arc::new(Datastore::open(&storage, dir.path(), "LiveApp", 0, keyring_of(dir.path())).await.unwrap());
        for i in 0..BURST {
            store.add_token(token(&format!("t{i}"), 100), 0).await.unwrap();
        }
        let release = storage.hold();
        let before = counting.counts();
        let consumes: Vec<_> = (0..BURST)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.consume_one_time_token_durably(&format!("t{i}")).await.unwrap_or(false) },
                )
            })
            .collect();
        while store.lock().consuming.len() < BURST {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        for consume in consumes {
            assert!(consume.await.unwrap());
        }
        assert_eq!(counting.counts().syncs - before.syncs, 1, "{BURST} consumes, one fdatasync");
    }

    /// Every file of `dir` (and below) that holds `needle`.
    fn files_holding(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_holding(&path, needle));
            } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle) {
                found.push(path);
            }
        }
        found
    }

    #[tokio::test]
    async fn a_store_written_whole_by_earlier_versions_loads_and_journals_on() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"broadcasts":[{"stream_id":"cam","name":"cam","kind":"liveStream","created_ms":5}],
            "rooms":["r1"],"tokens":[],"subscribers":[]}"#;
        AtomicWriter::new(dir.path()).write("store-LiveApp.json", old.as_bytes()).unwrap();
        AtomicWriter::new(dir.path()).write("store-LiveApp.json", old.as_bytes()).unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        assert_eq!(store.broadcast("cam"), Some(Broadcast::new("cam", 5)));
        store.add_token(token("new-token", 100), 0).await.unwrap();
        drop(store);
        let snapshot = std::fs::read(dir.path().join("store-LiveApp.json")).unwrap();
        assert!(snapshot.starts_with(b"# rampart-file v1 generation=2 "), "the old file is the snapshot, kept");
        let reopened = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        assert!(reopened.room_registered("r1") && reopened.one_time_token("new-token").is_some());
    }

    #[tokio::test]
    async fn clear_token_ids_and_keys_of_earlier_versions_are_hashed_sealed_and_rewritten_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = b"an-old-clear-totp-key";
        let old = format!(
            r#"{{"broadcasts":[],"rooms":[],"tokens":[
            {{"token_id":"old-token-one","stream_id":"cam","kind":"play","expire_date":100,"room_id":null}},
            {{"token_id":"old-token-two","stream_id":"cam","kind":"publish","expire_date":100,"room_id":null}},
            {{"token_id":"old-token-gone","stream_id":"cam","kind":"publish","expire_date":1,"room_id":null}}],
            "subscribers":[{{"subscriber_id":"s1","stream_id":"cam","secret_base64":"{}","kind":"play",
            "period":null,"blocked_publish_until":0,"blocked_play_until":0}}]}}"#,
            STANDARD.encode(key)
        );
        AtomicWriter::new(dir.path()).write("store-LiveApp.json", old.as_bytes()).unwrap();
        let consumed = Change::TokenConsumed { token: snapshot::TokenName::of(&TokenHash::of("unused")) };
        let journal_record = String::from_utf8(consumed.encode()).unwrap();
        assert!(!journal_record.contains("token_id"), "{journal_record}");
        let legacy_consume = r#"{"change":"token_consumed","token_id":"old-token-two"}"#;
        let journal = [&b"rampartJ"[..], &1u32.to_le_bytes(), &1u64.to_le_bytes()].concat();
        let framed = crate::storage::journal::frame(legacy_consume.as_bytes()).unwrap();
        std::fs::write(dir.path().join("store-LiveApp.journal"), [journal, framed].concat()).unwrap();

        let store = open_in(dir.path(), "LiveApp", 2).await.unwrap();
        assert!(store.one_time_token("old-token-one").is_some());
        assert!(store.one_time_token("old-token-two").is_none(), "consumed in the old journal");
        let s1 = store.subscriber("cam", "s1").unwrap();
        assert_eq!(s1.secret, SubscriberKey::Open(Secret::new(key.to_vec())));
        assert!(store.unopenable().is_empty());
        let clear = STANDARD.encode(key);
        for needle in ["old-token", "token_id", "secret_base64", clear.as_str(), "an-old-clear"] {
            assert_eq!(files_holding(dir.path(), needle), Vec::<std::path::PathBuf>::new(), "{needle}");
        }
        drop(store);
        let reopened = open_in(dir.path(), "LiveApp", 2).await.unwrap();
        assert!(reopened.consume_one_time_token_durably("old-token-one").await.unwrap_or(false));
        assert_eq!(reopened.subscriber("cam", "s1").unwrap().secret, s1.secret);
    }

    #[tokio::test]
    async fn a_key_that_does_not_open_refuses_and_is_listed_until_registered_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        let subscriber = |id: &str| Subscriber {
            subscriber_id: id.into(),
            stream_id: "cam".into(),
            secret: SubscriberKey::Open(Secret::new(vec![7; 20])),
            kind: SubscriberKind::Play,
            period: None,
            blocked_publish_until: 0,
            blocked_play_until: 0,
        };
        store.put_subscriber(subscriber("s1")).await.unwrap();
        store.put_subscriber(subscriber("s2")).await.unwrap();
        store.compact().await.unwrap();
        drop(store);
        // s1's sealed key moved onto s2: sealed for another name, it does not open there.
        let path = dir.path().join("store-LiveApp.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let sealed: Vec<&str> = text.match_indices("sealed:v1:").map(|(at, _)| &text[at..at + 60]).collect();
        let swapped = text.replacen(sealed[1], sealed[0], 1);
        std::fs::write(&path, swapped).unwrap();

        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        assert!(matches!(store.subscriber("cam", "s1").unwrap().secret, SubscriberKey::Open(_)));
        let SubscriberKey::Unopenable(why) = store.subscriber("cam", "s2").unwrap().secret else { panic!("s2 opens") };
        assert!(why.contains("does not open"), "{why}");
        let listed = store.unopenable();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].place, "the datastore of LiveApp");
        assert_eq!(listed[0].key, "TOTP key of subscriber s2 of stream cam");
        store.put_subscriber(subscriber("s2")).await.unwrap();
        assert!(store.unopenable().is_empty(), "registered again, sealed afresh");
        assert!(matches!(store.subscriber("cam", "s2").unwrap().secret, SubscriberKey::Open(_)));
    }

    #[tokio::test]
    async fn without_a_data_key_a_subscriber_is_not_registered() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never));
        let store = Datastore::open(&storage(), dir.path(), "LiveApp", 0, keyring).await.unwrap();
        let subscriber = Subscriber {
            subscriber_id: "s1".into(),
            stream_id: "cam".into(),
            secret: SubscriberKey::Open(Secret::new(vec![7; 20])),
            kind: SubscriberKind::Play,
            period: None,
            blocked_publish_until: 0,
            blocked_play_until: 0,
        };
        let refused = store.put_subscriber(subscriber).await;
        assert!(matches!(&refused, Err(StoreError::Unsealable(why)) if why.contains("no data key")), "{refused:?}");
        assert!(store.subscriber("cam", "s1").is_none());
    }

    #[tokio::test]
    async fn the_journal_compacts_past_its_bound_and_loads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        for i in 0..1_000 {
            store.add_token(token(&format!("token-{i:04}"), 100), 0).await.unwrap();
        }
        for i in 0..500 {
            assert!(store.consume_one_time_token_durably(&format!("token-{i:04}")).await.unwrap_or(false));
        }
        store.add_broadcast(Broadcast::new("cam", 1)).await.unwrap();
        drop(store);
        let journal = std::fs::metadata(dir.path().join("store-LiveApp.journal")).unwrap().len();
        assert!(journal <= crate::storage::journal::COMPACT_AFTER_BYTES + 200, "compacted: {journal} bytes");
        let reopened = open_in(dir.path(), "LiveApp", 0).await.unwrap();
        assert!(reopened.one_time_token("token-0499").is_none() && reopened.one_time_token("token-0500").is_some());
        assert_eq!(reopened.lock().records.tokens.len(), 500);
        assert!(reopened.stream_registered("cam"));
    }
}
