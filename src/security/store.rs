//! What the security pipeline reads from an application's datastore, as a port: the records it
//! decides on (one-time tokens, TOTP subscribers) and the trait the datastore implements
//! (`store/`). The checks only read; consuming a token is the commit of an admission, once
//! the session it admits has its place.

use super::Action;
use std::future::Future;
use std::pin::Pin;

/// A consume under way (see [`SecurityStore::consume_one_time_token`]); the error says why the
/// store could not make it durable.
pub type Consuming<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
use crate::secrets::Secret;

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
    /// The kind's name in the API and the store: `publish`, `play` or `publish_play`.
    pub fn name(self) -> &'static str {
        match self {
            SubscriberKind::Publish => "publish",
            SubscriberKind::Play => "play",
            SubscriberKind::PublishPlay => "publish_play",
        }
    }

    /// The kind named `name` (see [`SubscriberKind::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [SubscriberKind::Publish, SubscriberKind::Play, SubscriberKind::PublishPlay]
            .into_iter()
            .find(|k| k.name() == name)
    }

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

/// A subscriber's TOTP key, as the datastore could open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberKey {
    /// The key (decoded from base32).
    Open(Secret<Vec<u8>>),
    /// The key is kept sealed but does not open on this box: why (its TOTP refuses).
    Unopenable(String),
}

/// A TOTP subscriber registered for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The subscriber's name, as the client sends it.
    pub subscriber_id: String,
    /// The stream the subscriber may use.
    pub stream_id: String,
    /// The subscriber's TOTP key.
    pub secret: SubscriberKey,
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

/// What the security pipeline asks of an application's datastore.
pub trait SecurityStore: Send + Sync {
    /// Whether `stream_id` is registered (acceptOnlyStreamsInDataStore).
    fn stream_registered(&self, stream_id: &str) -> bool;
    /// Whether `room_id` is registered (acceptOnlyRoomsInDataStore).
    fn room_registered(&self, room_id: &str) -> bool;
    /// The one-time token `token_id` (looked up by its hash), if it exists and was not consumed.
    fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken>;
    /// Consumes `token_id`, durably: `Ok(true)` only for the one caller that consumed it, and
    /// only once a power cut can no longer bring it back; `Ok(false)` when it was used already;
    /// an error when the store could not make the consume durable (the token is left unused).
    fn consume_one_time_token(&self, token_id: &str) -> Consuming<'_>;
    /// The subscriber `subscriber_id` of `stream_id`, if registered.
    fn subscriber(&self, stream_id: &str, subscriber_id: &str) -> Option<Subscriber>;
}
