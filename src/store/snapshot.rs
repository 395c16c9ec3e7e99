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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::file::KeyFile;
    use crate::secrets::keyring::{Keyring, Mint};
    use crate::secrets::{Secret, ct_eq};
    use crate::storage::fs::RealFs;
    use std::sync::Arc;

    fn keys() -> Keys {
        Keys::new(Arc::new(Keyring::ephemeral()), "LiveApp")
    }

    fn subscriber(stream: &str) -> Subscriber {
        Subscriber {
            subscriber_id: "cam1".into(),
            stream_id: stream.into(),
            secret: SubscriberKey::Open(Secret::new(b"the-totp-key".to_vec())),
            kind: SubscriberKind::Publish,
            period: Some(30),
            blocked_publish_until: 0,
            blocked_play_until: 9,
        }
    }

    fn json(record: &impl Serialize) -> String {
        serde_json::to_string(record).unwrap()
    }

    #[test]
    fn a_token_record_names_the_hash_and_an_old_clear_id_is_hashed() {
        let kept = KeptToken {
            hash: TokenHash::of("the-id"),
            stream_id: "s1".into(),
            kind: Action::Play,
            expire_date: 50,
            room_id: Some("r1".into()),
        };
        let written = json(&TokenRecord::of(&kept));
        assert!(written.contains(&format!(r#""token_sha256":"{}""#, kept.hash.text())), "{written}");
        assert!(!written.contains("the-id") && !written.contains("token_id"), "{written}");
        let mut rewrite = Rewrite::default();
        let read: TokenRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(read.token(&mut rewrite), Ok(kept.clone()));
        assert!(!rewrite.needed());

        let old = r#"{"token_id":"the-id","stream_id":"s1","kind":"play","expire_date":50,"room_id":"r1"}"#;
        let read: TokenRecord = serde_json::from_str(old).unwrap();
        assert_eq!(read.token(&mut rewrite), Ok(kept));
        assert_eq!(rewrite, Rewrite { token_ids: 1, totp_keys: 0 });
        let nameless: TokenRecord =
            serde_json::from_str(r#"{"stream_id":"s1","kind":"play","expire_date":50,"room_id":null}"#).unwrap();
        assert!(nameless.token(&mut rewrite).is_err());
    }

    #[test]
    fn a_subscriber_record_holds_its_key_sealed_for_its_own_name() {
        let keys = keys();
        let kept = KeptSubscriber::sealed(subscriber("s1"), &keys).unwrap();
        let written = json(&SubscriberRecord::of(&kept));
        assert!(written.contains(r#""key_sealed":"sealed:v1:"#) && !written.contains("secret_base64"), "{written}");
        assert!(!written.contains(&STANDARD.encode(b"the-totp-key")), "{written}");
        let mut rewrite = Rewrite::default();
        let read: SubscriberRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(read.subscriber(&keys, &mut rewrite), Ok(kept.clone()));
        assert!(!rewrite.needed());

        let moved = written.replace(r#""stream_id":"s1""#, r#""stream_id":"s2""#);
        let read: SubscriberRecord = serde_json::from_str(&moved).unwrap();
        let other = read.subscriber(&keys, &mut rewrite).unwrap();
        assert!(other.unopenable().is_some_and(|why| why.contains("does not open")), "{other:?}");
        assert_eq!(SubscriberRecord::of(&other).key_sealed, SubscriberRecord::of(&kept).key_sealed, "kept as it was");
    }

    #[test]
    fn an_old_clear_key_is_sealed_or_kept_as_it_was_without_a_data_key() {
        let old = format!(
            r#"{{"subscriber_id":"cam1","stream_id":"s1","secret_base64":"{}","kind":"publish","period":30,
            "blocked_publish_until":0,"blocked_play_until":9}}"#,
            STANDARD.encode(b"the-totp-key")
        );
        let mut rewrite = Rewrite::default();
        let read: SubscriberRecord = serde_json::from_str(&old).unwrap();
        let kept = read.subscriber(&keys(), &mut rewrite).unwrap();
        assert_eq!(kept.subscriber, subscriber("s1"));
        assert!(matches!(kept.text, KeyText::Sealed(_)));
        assert_eq!(rewrite, Rewrite { token_ids: 0, totp_keys: 1 });

        let dir = tempfile::tempdir().unwrap();
        let no_key = Keys::new(Arc::new(Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never)), "LiveApp");
        let mut rewrite = Rewrite::default();
        let read: SubscriberRecord = serde_json::from_str(&old).unwrap();
        let kept = read.subscriber(&no_key, &mut rewrite).unwrap();
        let SubscriberKey::Open(key) = &kept.subscriber.secret else { panic!("a clear key opens") };
        assert!(ct_eq(key.expose(), b"the-totp-key"));
        assert!(matches!(kept.text, KeyText::Clear(_)), "not lost while it cannot be sealed");
        assert!(!rewrite.needed());
        let keyless: SubscriberRecord = serde_json::from_str(
            r#"{"subscriber_id":"cam1","stream_id":"s1","kind":"play","period":null,"blocked_publish_until":0,"blocked_play_until":0}"#,
        )
        .unwrap();
        assert!(keyless.subscriber(&keys(), &mut rewrite).is_err());
    }
}
