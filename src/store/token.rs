//! One-time tokens as the datastore keeps them: under the SHA-256 of their id, never the id
//! itself. An id is a bearer secret: the REST answer that made it is the only place it appears,
//! and a presented token is looked up by its hash.

use crate::secrets::Secret;
use crate::security::Action;
use crate::security::store::OneTimeToken;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The SHA-256 of a one-time token's id, what the datastore keys the token by. Not a secret:
/// presenting it admits no one (it would be hashed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token_id`.
    pub fn of(token_id: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token_id.as_bytes());
        let mut hash = [0; 32];
        hash.copy_from_slice(digest.as_ref());
        TokenHash(hash)
    }

    /// The hash as base64url without padding (43 characters), as stored and listed.
    pub fn text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A hash [`TokenHash::text`] wrote.
    pub fn parse(text: &str) -> Option<Self> {
        URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok().map(TokenHash)
    }
}

/// A one-time token as kept: the hash of its id, and its terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptToken {
    /// The SHA-256 of its id.
    pub hash: TokenHash,
    /// The stream it opens.
    pub stream_id: String,
    /// Whether it publishes or plays.
    pub kind: Action,
    /// Unix seconds after which it is refused.
    pub expire_date: u64,
    /// The conference room it is bound to, if any.
    pub room_id: Option<String>,
}

impl KeptToken {
    /// `token` as kept: its id hashed, and forgotten.
    pub fn of(token: &OneTimeToken) -> Self {
        KeptToken {
            hash: TokenHash::of(token.token_id.expose()),
            stream_id: token.stream_id.clone(),
            kind: token.kind,
            expire_date: token.expire_date,
            room_id: token.room_id.clone(),
        }
    }

    /// The token as the client presented it, with `token_id` (whose hash is this one's).
    pub fn presented(&self, token_id: &str) -> OneTimeToken {
        OneTimeToken {
            token_id: Secret::new(token_id.to_string()),
            stream_id: self.stream_id.clone(),
            kind: self.kind,
            expire_date: self.expire_date,
            room_id: self.room_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_and_is_not_the_id() {
        let hash = TokenHash::of("t1");
        assert_eq!(hash.text().len(), 43);
        assert!(!hash.text().contains("t1"));
        assert_eq!(TokenHash::parse(&hash.text()), Some(hash));
        assert_ne!(TokenHash::of("t2"), hash);
        assert_eq!(TokenHash::parse("t1"), None);
        assert_eq!(TokenHash::parse(&URL_SAFE_NO_PAD.encode([0; 31])), None, "31 bytes");
    }
}
