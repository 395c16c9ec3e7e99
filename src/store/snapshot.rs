//! The datastore as a JSON document on the data partition. Token ids and subscriber keys are
//! stored as they are: the data partition is the box's own, and the panel never shows them.

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

#[derive(Serialize, Deserialize)]
struct BroadcastRecord {
    stream_id: String,
    name: String,
    kind: String,
    created_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    token_id: String,
    stream_id: String,
    kind: String,
    expire_date: u64,
    room_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SubscriberRecord {
    subscriber_id: String,
    stream_id: String,
    secret_base64: String,
    kind: String,
    period: Option<u32>,
    blocked_publish_until: u64,
    blocked_play_until: u64,
}

/// The records as JSON, sorted so that equal records make equal files.
pub(super) fn encode(records: &Records) -> Vec<u8> {
    let mut snapshot = Snapshot {
        broadcasts: records
            .broadcasts
            .values()
            .map(|b| BroadcastRecord {
                stream_id: b.stream_id.clone(),
                name: b.name.clone(),
                kind: b.kind.clone(),
                created_ms: b.created_ms,
            })
            .collect(),
        rooms: records.rooms.iter().cloned().collect(),
        tokens: records
            .tokens
            .values()
            .map(|t| TokenRecord {
                token_id: t.token_id.expose().clone(),
                stream_id: t.stream_id.clone(),
                kind: t.kind.as_str().to_string(),
                expire_date: t.expire_date,
                room_id: t.room_id.clone(),
            })
            .collect(),
        subscribers: records
            .subscribers
            .values()
            .map(|s| SubscriberRecord {
                subscriber_id: s.subscriber_id.clone(),
                stream_id: s.stream_id.clone(),
                secret_base64: STANDARD.encode(s.secret.expose()),
                kind: s.kind.name().to_string(),
                period: s.period,
                blocked_publish_until: s.blocked_publish_until,
                blocked_play_until: s.blocked_play_until,
            })
            .collect(),
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
                let broadcast =
                    Broadcast { stream_id: b.stream_id, name: b.name, kind: b.kind, created_ms: b.created_ms };
                (broadcast.stream_id.clone(), broadcast)
            })
            .collect(),
        rooms: snapshot.rooms.into_iter().collect(),
        ..Records::default()
    };
    for t in snapshot.tokens.into_iter().filter(|t| t.expire_date > now) {
        let kind = Action::from_name(&t.kind).ok_or_else(|| format!("token kind {:?}", t.kind))?;
        let token = OneTimeToken {
            token_id: Secret::new(t.token_id),
            stream_id: t.stream_id,
            kind,
            expire_date: t.expire_date,
            room_id: t.room_id,
        };
        records.tokens.insert(token.token_id.expose().clone(), token);
    }
    for s in snapshot.subscribers {
        let kind = SubscriberKind::from_name(&s.kind).ok_or_else(|| format!("subscriber kind {:?}", s.kind))?;
        let secret = STANDARD.decode(&s.secret_base64).map_err(|_| format!("subscriber {} key", s.subscriber_id))?;
        let subscriber = Subscriber {
            subscriber_id: s.subscriber_id,
            stream_id: s.stream_id,
            secret: Secret::new(secret),
            kind,
            period: s.period,
            blocked_publish_until: s.blocked_publish_until,
            blocked_play_until: s.blocked_play_until,
        };
        records.subscribers.insert((subscriber.stream_id.clone(), subscriber.subscriber_id.clone()), subscriber);
    }
    Ok(records)
}
