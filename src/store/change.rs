//! One change of a datastore, as a journal record (JSON): made durable first, then applied to
//! the records in memory; at load the journal's changes are applied to the snapshot in order.

use super::Records;
use super::keys::Keys;
use super::snapshot::{BroadcastRecord, Rewrite, SubscriberRecord, TokenName, TokenRecord};
use serde::{Deserialize, Serialize};

/// A change of the records.
#[derive(Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub(super) enum Change {
    /// A one-time token was made.
    TokenAdded(TokenRecord),
    /// A one-time token admitted someone.
    TokenConsumed {
        #[serde(flatten)]
        token: TokenName,
    },
    /// The unused tokens of a stream were deleted.
    TokensDeleted { stream_id: String },
    /// A broadcast was registered.
    BroadcastAdded(BroadcastRecord),
    /// A broadcast was deleted, with its tokens and subscribers.
    BroadcastDeleted { stream_id: String },
    /// A conference room was registered.
    RoomAdded { room_id: String },
    /// A conference room was deleted.
    RoomDeleted { room_id: String },
    /// A subscriber was registered or replaced.
    SubscriberPut(SubscriberRecord),
    /// A subscriber was deleted.
    SubscriberDeleted { stream_id: String, subscriber_id: String },
    /// A subscriber was blocked (or unblocked) from publishing, playing or both until a time.
    SubscriberBlocked { stream_id: String, subscriber_id: String, publish_until: Option<u64>, play_until: Option<u64> },
}

impl Change {
    /// The change as a journal record.
    pub(super) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A journal record read back.
    pub(super) fn decode(record: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(record).map_err(|e| e.to_string())
    }

    /// Applies the change, opening a subscriber's key with `keys`; what was read in clear is
    /// counted in `rewrite`. Only a record whose names are unknown or malformed fails (a journal
    /// from elsewhere). Bounds were checked when the change was made.
    pub(super) fn apply(self, r: &mut Records, keys: &Keys, rewrite: &mut Rewrite) -> Result<(), String> {
        match self {
            Change::TokenAdded(token) => {
                let token = token.token(rewrite)?;
                r.tokens.insert(token.hash, token);
            }
            Change::TokenConsumed { token } => drop(r.tokens.remove(&token.hash(rewrite)?)),
            Change::TokensDeleted { stream_id } => r.tokens.retain(|_, t| t.stream_id != stream_id),
            Change::BroadcastAdded(broadcast) => {
                let broadcast = broadcast.broadcast();
                r.broadcasts.insert(broadcast.stream_id.clone(), broadcast);
            }
            Change::BroadcastDeleted { stream_id } => {
                r.tokens.retain(|_, t| t.stream_id != stream_id);
                r.subscribers.retain(|(stream, _), _| *stream != stream_id);
                r.broadcasts.remove(&stream_id);
            }
            Change::RoomAdded { room_id } => drop(r.rooms.insert(room_id)),
            Change::RoomDeleted { room_id } => drop(r.rooms.remove(&room_id)),
            Change::SubscriberPut(subscriber) => {
                let kept = subscriber.subscriber(keys, rewrite)?;
                r.subscribers.insert(kept.key(), kept);
            }
            Change::SubscriberDeleted { stream_id, subscriber_id } => {
                r.subscribers.remove(&(stream_id, subscriber_id));
            }
            Change::SubscriberBlocked { stream_id, subscriber_id, publish_until, play_until } => {
                if let Some(s) = r.subscribers.get_mut(&(stream_id, subscriber_id)).map(|k| &mut k.subscriber) {
                    s.blocked_publish_until = publish_until.unwrap_or(s.blocked_publish_until);
                    s.blocked_play_until = play_until.unwrap_or(s.blocked_play_until);
                }
            }
        }
        Ok(())
    }
}
