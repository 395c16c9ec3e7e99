//! The datastore as a JSON document on the data partition, and the records it is made of (the
//! journal's changes carry the same records, [`super::change`]). No secret is written in clear:
//! a one-time token is kept as the SHA-256 of its id ([`super::token`]), a subscriber's TOTP key
//! sealed ([`super::keys`]). What older versions wrote in clear (`token_id`, `secret_base64`) is
//! read, hashed or sealed, and counted in a [`Rewrite`] so that the open writes the store again.

use super::keys::{KeptSubscriber, KeyText, Keys, open_key};
use super::token::{KeptToken, TokenHash};
use super::{Broadcast, Records, SubscriberKind};
use crate::security::Action;
use crate::security::store::{Subscriber, SubscriberKey};
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

/// What a load read that must be written again: token ids and TOTP keys in clear (from older
/// versions), keys sealed under an older data key.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Rewrite {
    /// Token ids read in clear, now hashed.
    pub(super) token_ids: usize,
    /// TOTP keys read in clear or under an older data key, now sealed afresh.
    pub(super) totp_keys: usize,
}

impl Rewrite {
    /// Whether anything must be written again.
    pub(super) fn needed(&self) -> bool {
        self.token_ids > 0 || self.totp_keys > 0
    }
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

/// How a record names a one-time token: by the SHA-256 of its id.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenName {
    /// The SHA-256 of the id, base64url ([`TokenHash::text`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_sha256: Option<String>,
    /// The id itself, as older versions wrote it: read and hashed, never written.
    #[serde(default, skip_serializing)]
    token_id: Option<String>,
}

impl TokenName {
    pub(super) fn of(hash: &TokenHash) -> Self {
        TokenName { token_sha256: Some(hash.text()), token_id: None }
    }

    /// The hash named; an id in clear is hashed and counted in `rewrite`.
    pub(super) fn hash(&self, rewrite: &mut Rewrite) -> Result<TokenHash, String> {
        match (&self.token_sha256, &self.token_id) {
            (Some(text), _) => TokenHash::parse(text).ok_or_else(|| "a token hash is not base64url of 32 bytes".into()),
            (None, Some(id)) => {
                rewrite.token_ids += 1;
                Ok(TokenHash::of(id))
            }
            (None, None) => Err("a token record names no token".into()),
        }
    }
}

/// A one-time token as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenRecord {
    #[serde(flatten)]
    name: TokenName,
    stream_id: String,
    kind: String,
    expire_date: u64,
    room_id: Option<String>,
}

impl TokenRecord {
    pub(super) fn of(t: &KeptToken) -> Self {
        TokenRecord {
            name: TokenName::of(&t.hash),
            stream_id: t.stream_id.clone(),
            kind: t.kind.as_str().to_string(),
            expire_date: t.expire_date,
            room_id: t.room_id.clone(),
        }
    }

    pub(super) fn token(self, rewrite: &mut Rewrite) -> Result<KeptToken, String> {
        let kind = Action::from_name(&self.kind).ok_or_else(|| format!("token kind {:?}", self.kind))?;
        Ok(KeptToken {
            hash: self.name.hash(rewrite)?,
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
    /// The TOTP key, sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_sealed: Option<String>,
    /// The TOTP key in clear, as older versions wrote it; written again only while no data key
    /// can seal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_base64: Option<String>,
    kind: String,
    period: Option<u32>,
    blocked_publish_until: u64,
    blocked_play_until: u64,
}

impl SubscriberRecord {
    pub(super) fn of(kept: &KeptSubscriber) -> Self {
        let s = &kept.subscriber;
        let (key_sealed, secret_base64) = match &kept.text {
            KeyText::Sealed(sealed) => (Some(sealed.clone()), None),
            KeyText::Clear(clear) => (None, Some(clear.clone())),
        };
        SubscriberRecord {
            subscriber_id: s.subscriber_id.clone(),
            stream_id: s.stream_id.clone(),
            key_sealed,
            secret_base64,
            kind: s.kind.name().to_string(),
            period: s.period,
            blocked_publish_until: s.blocked_publish_until,
            blocked_play_until: s.blocked_play_until,
        }
    }

    /// The subscriber, its key opened by `keys`; a key that does not open makes a subscriber
    /// whose TOTP refuses. A key in clear or under an older data key is sealed afresh and
    /// counted in `rewrite`.
    pub(super) fn subscriber(self, keys: &Keys, rewrite: &mut Rewrite) -> Result<KeptSubscriber, String> {
        let kind = SubscriberKind::from_name(&self.kind).ok_or_else(|| format!("subscriber kind {:?}", self.kind))?;
        let (stream, id) = (&self.stream_id, &self.subscriber_id);
        let (secret, text) = match (self.key_sealed, self.secret_base64) {
            (Some(sealed), _) => match keys.open(stream, id, &sealed) {
                Err(why) => (SubscriberKey::Unopenable(why), KeyText::Sealed(sealed)),
                Ok(opened) => {
                    let resealed = opened.stale.then(|| keys.seal(stream, id, &opened.clear).ok()).flatten();
                    rewrite.totp_keys += usize::from(resealed.is_some());
                    (open_key(&opened.clear), KeyText::Sealed(resealed.unwrap_or(sealed)))
                }
            },
            (None, Some(clear)) => {
                let key = zeroize::Zeroizing::new(STANDARD.decode(&clear).map_err(|_| format!("subscriber {id} key"))?);
                match keys.seal(stream, id, &key) {
                    Ok(sealed) => {
                        rewrite.totp_keys += 1;
                        (open_key(&key), KeyText::Sealed(sealed))
                    }
                    Err(why) => {
                        log::warn!(
                            "the datastore of {}: the TOTP key of subscriber {id} of stream {stream} stays in clear: {why}",
                            keys.app()
                        );
                        (open_key(&key), KeyText::Clear(clear))
                    }
                }
            }
            (None, None) => return Err(format!("subscriber {id} has no key")),
        };
        let subscriber = Subscriber {
            subscriber_id: self.subscriber_id,
            stream_id: self.stream_id,
            secret,
            kind,
            period: self.period,
            blocked_publish_until: self.blocked_publish_until,
            blocked_play_until: self.blocked_play_until,
        };
        Ok(KeptSubscriber { subscriber, text })
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
    snapshot.tokens.sort_by(|a, b| a.name.token_sha256.cmp(&b.name.token_sha256));
    snapshot.subscribers.sort_by(|a, b| (&a.stream_id, &a.subscriber_id).cmp(&(&b.stream_id, &b.subscriber_id)));
    serde_json::to_vec_pretty(&snapshot).unwrap_or_default()
}

/// Whether `bytes` is a datastore document (not a torn file).
pub(super) fn parses(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Snapshot>(bytes).is_ok()
}

/// Reads records back, opening keys with `keys`; tokens expired by `now` are dropped.
pub(super) fn decode(bytes: &[u8], now: u64, keys: &Keys, rewrite: &mut Rewrite) -> Result<Records, String> {
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
    for t in snapshot.tokens {
        // Read even when expired: an id in clear must not stay on disk.
        let token = t.token(rewrite)?;
        if token.expire_date > now {
            records.tokens.insert(token.hash, token);
        }
    }
    for s in snapshot.subscribers {
        let kept = s.subscriber(keys, rewrite)?;
        records.subscribers.insert(kept.key(), kept);
    }
    Ok(records)
}
