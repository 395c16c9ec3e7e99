//! The datastore the security pipeline reads: registered streams and rooms, one-time tokens and
//! TOTP subscribers, one store per application. [`MemoryStore`] keeps them in memory with fixed
//! bounds; the persistent store of the data partition implements the same trait.

use crate::secrets::{Secret, ct_eq};
use crate::security::Action;
use std::collections::{HashMap, HashSet};
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

/// Why the store refused to add a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store holds as many records of this kind as it may.
    #[error("the datastore is full: at most {0} {1}")]
    Full(usize, &'static str),
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

/// Most records of each kind a [`MemoryStore`] holds.
pub const MEMORY_STORE_LIMIT: usize = 10_000;

#[derive(Default)]
struct Records {
    streams: HashSet<String>,
    rooms: HashSet<String>,
    tokens: HashMap<String, OneTimeToken>,
    subscribers: HashMap<(String, String), Subscriber>,
}

/// An in-memory datastore with fixed bounds.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream.
    pub fn add_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        let mut records = self.lock();
        bounded(records.streams.len(), "streams")?;
        records.streams.insert(stream_id.to_string());
        Ok(())
    }

    /// Registers a conference room.
    pub fn add_room(&self, room_id: &str) -> Result<(), StoreError> {
        let mut records = self.lock();
        bounded(records.rooms.len(), "rooms")?;
        records.rooms.insert(room_id.to_string());
        Ok(())
    }

    /// Adds a one-time token; expired tokens are pruned first to make room.
    pub fn add_token(&self, token: OneTimeToken, now: u64) -> Result<(), StoreError> {
        let mut records = self.lock();
        if records.tokens.len() >= MEMORY_STORE_LIMIT {
            records.tokens.retain(|_, t| t.expire_date > now);
        }
        bounded(records.tokens.len(), "one-time tokens")?;
        records.tokens.insert(token.token_id.expose().clone(), token);
        Ok(())
    }

    /// Deletes every unused token of `stream_id`; returns how many.
    pub fn delete_tokens(&self, stream_id: &str) -> usize {
        let mut records = self.lock();
        let before = records.tokens.len();
        records.tokens.retain(|_, t| t.stream_id != stream_id);
        before - records.tokens.len()
    }

    /// Registers or replaces a subscriber.
    pub fn put_subscriber(&self, subscriber: Subscriber) -> Result<(), StoreError> {
        let mut records = self.lock();
        let key = (subscriber.stream_id.clone(), subscriber.subscriber_id.clone());
        if !records.subscribers.contains_key(&key) {
            bounded(records.subscribers.len(), "subscribers")?;
        }
        records.subscribers.insert(key, subscriber);
        Ok(())
    }
}

fn bounded(len: usize, what: &'static str) -> Result<(), StoreError> {
    if len >= MEMORY_STORE_LIMIT { Err(StoreError::Full(MEMORY_STORE_LIMIT, what)) } else { Ok(()) }
}

impl SecurityStore for MemoryStore {
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
        self.lock().tokens.remove(token_id).is_some()
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
        let store = MemoryStore::default();
        store.add_token(token("t1", 100), 0).unwrap();
        assert!(store.one_time_token("t1").is_some());
        assert!(store.consume_one_time_token("t1"));
        assert!(!store.consume_one_time_token("t1"));
        assert!(store.one_time_token("t1").is_none());
    }

    #[test]
    fn expired_tokens_make_room() {
        let store = MemoryStore::default();
        for i in 0..MEMORY_STORE_LIMIT {
            store.add_token(token(&format!("old{i}"), 10), 0).unwrap();
        }
        assert_eq!(store.add_token(token("new", 100), 5), Err(StoreError::Full(MEMORY_STORE_LIMIT, "one-time tokens")));
        store.add_token(token("new", 100), 11).unwrap();
        assert!(store.one_time_token("old1").is_none());
    }

    #[test]
    fn deleting_a_streams_tokens_keeps_the_others() {
        let store = MemoryStore::default();
        store.add_token(token("a", 100), 0).unwrap();
        let mut other = token("b", 100);
        other.stream_id = "s2".into();
        store.add_token(other, 0).unwrap();
        assert_eq!(store.delete_tokens("s1"), 1);
        assert!(store.one_time_token("a").is_none());
        assert!(store.one_time_token("b").is_some());
    }
}
