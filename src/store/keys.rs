//! Subscribers' TOTP keys as the datastore keeps them: sealed with the box's keyring
//! (`sealed:v1:`, [`crate::secrets::envelope`]) for the name `subscriber:<App>/<streamId>/<subscriberId>`,
//! so that a sealed key copied onto another subscriber does not open. A key is sealed once, when
//! its subscriber is registered; the sealed text stays beside the opened key in memory, so that a
//! snapshot writes it as it is. Sealing and opening are in memory.

use crate::secrets::keyring::Opened;
use crate::secrets::{Keyring, Secret};
use crate::security::store::{Subscriber, SubscriberKey};
use std::sync::Arc;

/// Seals and opens the TOTP keys of one application's subscribers.
pub(super) struct Keys {
    keyring: Arc<Keyring>,
    app: String,
}

impl Keys {
    /// The keys of `app`'s subscribers, sealed with `keyring`.
    pub(super) fn new(keyring: Arc<Keyring>, app: &str) -> Self {
        Keys { keyring, app: app.to_string() }
    }

    /// Keys sealed with a fresh data key kept nowhere (a store that forgets everything at exit).
    pub(super) fn in_memory() -> Self {
        Keys::new(Arc::new(Keyring::ephemeral()), "")
    }

    /// The application, for the log and the system status.
    pub(super) fn app(&self) -> &str {
        &self.app
    }

    /// The name a key is sealed for: it ties the value to its subscriber.
    fn name(&self, stream_id: &str, subscriber_id: &str) -> String {
        format!("subscriber:{}/{stream_id}/{subscriber_id}", self.app)
    }

    /// `clear`, the key of `subscriber_id` of `stream_id`, sealed.
    pub(super) fn seal(&self, stream_id: &str, subscriber_id: &str, clear: &[u8]) -> Result<String, String> {
        self.keyring.seal(&self.name(stream_id, subscriber_id), clear).map_err(|e| e.to_string())
    }

    /// The key of `subscriber_id` of `stream_id` that `sealed` holds.
    pub(super) fn open(&self, stream_id: &str, subscriber_id: &str, sealed: &str) -> Result<Opened, String> {
        self.keyring.open(&self.name(stream_id, subscriber_id), sealed).map_err(|e| e.to_string())
    }
}

/// How a subscriber's key is written in the datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyText {
    /// Sealed (`sealed:v1:`).
    Sealed(String),
    /// Base64 in clear, as an older version wrote it, kept as it was only while no data key is
    /// open to seal it.
    Clear(String),
}

/// A subscriber as kept: as the pipeline sees it, and its key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeptSubscriber {
    pub(super) subscriber: Subscriber,
    pub(super) text: KeyText,
}

impl KeptSubscriber {
    /// `subscriber`, whose key is open, with its key sealed by `keys`.
    pub(super) fn sealed(subscriber: Subscriber, keys: &Keys) -> Result<Self, String> {
        let SubscriberKey::Open(key) = &subscriber.secret else {
            return Err("a subscriber is registered with its key".into());
        };
        let sealed = keys.seal(&subscriber.stream_id, &subscriber.subscriber_id, key.expose())?;
        Ok(KeptSubscriber { subscriber, text: KeyText::Sealed(sealed) })
    }

    /// Its place in the records: stream and subscriber ids.
    pub(super) fn key(&self) -> (String, String) {
        (self.subscriber.stream_id.clone(), self.subscriber.subscriber_id.clone())
    }

    /// The why of a key that does not open, if it does not.
    pub(super) fn unopenable(&self) -> Option<&str> {
        match &self.subscriber.secret {
            SubscriberKey::Unopenable(why) => Some(why),
            SubscriberKey::Open(_) => None,
        }
    }
}

/// An opened key for the pipeline.
pub(super) fn open_key(clear: &[u8]) -> SubscriberKey {
    SubscriberKey::Open(Secret::new(clear.to_vec()))
}
