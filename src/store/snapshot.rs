//! The datastore as a JSON document on the data partition, and the records it is made of (the
//! journal's changes carry the same records, [`super::change`]). Token ids and subscriber keys
//! are stored as they are: the data partition is the box's own, and the panel never shows them.

use super::{Broadcast, OneTimeToken, Records, Subscriber, SubscriberKind};
use crate::secrets::Secret;
use crate::security::Action;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    broadcasts: Vec<BroadcastRecord>,
    rooms: Vec<String>,
    tokens: Vec<TokenRecord>,
    subscribers: Vec<SubscriberRecord>,
}

/// A broadcast as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct BroadcastRecord {
    stream_id: String,
    name: String,
    kind: String,
    created_ms: u64,
}

impl BroadcastRecord {
    pub(super) fn of(b: &Broadcast) -> Self {
        BroadcastRecord {
            stream_id: b.stream_id.clone(),
            name: b.name.clone(),
            kind: b.kind.clone(),
            created_ms: b.created_ms,
        }
    }

    pub(super) fn broadcast(self) -> Broadcast {
        Broadcast { stream_id: self.stream_id, name: self.name, kind: self.kind, created_ms: self.created_ms }
    }
}

/// A one-time token as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenRecord {
    token_id: String,
    stream_id: String,
    kind: String,
    expire_date: u64,
    room_id: Option<String>,
}

impl TokenRecord {
    pub(super) fn of(t: &OneTimeToken) -> Self {
        TokenRecord {
            token_id: t.token_id.expose().clone(),
            stream_id: t.stream_id.clone(),
            kind: t.kind.as_str().to_string(),
            expire_date: t.expire_date,
            room_id: t.room_id.clone(),
        }
    }

    pub(super) fn token(self) -> Result<OneTimeToken, String> {
        let kind = Action::from_name(&self.kind).ok_or_else(|| format!("token kind {:?}", self.kind))?;
        Ok(OneTimeToken {
            token_id: Secret::new(self.token_id),
            stream_id: self.stream_id,
            kind,
            expire_date: self.expire_date,
            room_id: self.room_id,
        })
    }
}

/// A subscriber as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct SubscriberRecord {
    subscriber_id: String,
    stream_id: String,
    secret_base64: String,
    kind: String,
    period: Option<u32>,
    blocked_publish_until: u64,
    blocked_play_until: u64,
}

impl SubscriberRecord {
    pub(super) fn of(s: &Subscriber) -> Self {
        SubscriberRecord {
            subscriber_id: s.subscriber_id.clone(),
            stream_id: s.stream_id.clone(),
            secret_base64: STANDARD.encode(s.secret.expose()),
            kind: s.kind.name().to_string(),
            period: s.period,
            blocked_publish_until: s.blocked_publish_until,
            blocked_play_until: s.blocked_play_until,
        }
    }

    pub(super) fn subscriber(self) -> Result<Subscriber, String> {
        let kind = SubscriberKind::from_name(&self.kind).ok_or_else(|| format!("subscriber kind {:?}", self.kind))?;
        let secret =
            STANDARD.decode(&self.secret_base64).map_err(|_| format!("subscriber {} key", self.subscriber_id))?;
        Ok(Subscriber {
            subscriber_id: self.subscriber_id,
            stream_id: self.stream_id,
            secret: Secret::new(secret),
            kind,
            period: self.period,
            blocked_publish_until: self.blocked_publish_until,
            blocked_play_until: self.blocked_play_until,
        })
    }
}

/// The records as JSON, sorted so that equal records make equal files.
pub(super) fn encode(records: &Records) -> Vec<u8> {
    let mut snapshot = Snapshot {
        broadcasts: records.broadcasts.values().map(BroadcastRecord::of).collect(),
        rooms: records.rooms.iter().cloned().collect(),
        tokens: records.tokens.values().map(TokenRecord::of).collect(),
        subscribers: records.subscribers.values().map(SubscriberRecord::of).collect(),
    };
    snapshot.broadcasts.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    snapshot.tokens.sort_by(|a, b| a.token_id.cmp(&b.token_id));
    snapshot.subscribers.sort_by(|a, b| (&a.stream_id, &a.subscriber_id).cmp(&(&b.stream_id, &b.subscriber_id)));
    serde_json::to_vec_pretty(&snapshot).unwrap_or_default()
}

/// Reads records back; tokens expired by `now` are dropped.
pub(super) fn decode(bytes: &[u8], now: u64) -> Result<Records, String> {
    let snapshot: Snapshot = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut records = Records {
        broadcasts: snapshot
            .broadcasts
            .into_iter()
            .map(|b| {
                let broadcast = b.broadcast();
                (broadcast.stream_id.clone(), broadcast)
            })
            .collect(),
        rooms: snapshot.rooms.into_iter().collect(),
        ..Records::default()
    };
    for t in snapshot.tokens.into_iter().filter(|t| t.expire_date > now) {
        let token = t.token()?;
        records.tokens.insert(token.token_id.expose().clone(), token);
    }
    for s in snapshot.subscribers {
        let subscriber = s.subscriber()?;
        records.subscribers.insert((subscriber.stream_id.clone(), subscriber.subscriber_id.clone()), subscriber);
    }
    Ok(records)
}
