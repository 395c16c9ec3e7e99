//! The envelope every secret is stored in: `sealed:v1:<base64(nonce | AES-256-GCM ciphertext |
//! tag)>`, under the box's 32-byte data key, with the secret's name as associated data (a value
//! copied onto another name does not open). Pure and in memory: the data key itself is sealed by
//! a [`super::SecretStore`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// What every sealed value starts with.
pub const PREFIX: &str = "sealed:v1:";
/// Bytes in a data key.
pub const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 16;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The text does not start with `sealed:v1:`.
    #[error("not a sealed value (it does not start with {PREFIX})")]
    NotSealed,
    /// The text after the prefix is not base64, or too short to hold a nonce and a tag.
    #[error("the sealed value is malformed (truncated or not base64)")]
    Malformed,
    /// The tag did not verify: another data key sealed it, it was sealed for another name, or it
    /// was altered.
    #[error(
        "the sealed value does not open with this box's data key (sealed by another box, for another key, or altered)"
    )]
    DoesNotOpen,
    /// The system gave no random bytes for a nonce or a key.
    #[error("the system has no randomness to give")]
    NoRandomness,
    /// A data key must be exactly 32 bytes.
    #[error("a data key is {KEY_BYTES} bytes, this one is {0}")]
    KeyLength(usize),
}

/// The box's data key: 32 bytes, wiped from memory when dropped, never printed.
pub struct DataKey {
    raw: Zeroizing<[u8; KEY_BYTES]>,
    aead: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    /// A fresh key from the system's generator.
    pub fn generate() -> Result<Self, EnvelopeError> {
        let mut raw = Zeroizing::new([0u8; KEY_BYTES]);
        SystemRandom::new().fill(raw.as_mut()).map_err(|_| EnvelopeError::NoRandomness)?;
        DataKey::from_bytes(raw.as_ref())
    }

    /// The key of these bytes (what a store unsealed).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut raw = Zeroizing::new([0u8; KEY_BYTES]);
        if bytes.len() != KEY_BYTES {
            return Err(EnvelopeError::KeyLength(bytes.len()));
        }
        raw.copy_from_slice(bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, raw.as_ref()).map_err(|_| EnvelopeError::KeyLength(bytes.len()))?;
        Ok(DataKey { raw, aead: LessSafeKey::new(unbound) })
    }

    /// The key's bytes, for the store that seals it.
    pub fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.raw
    }

    /// `clear` sealed for `name`, with a fresh random nonce.
    pub fn seal(&self, name: &str, clear: &[u8]) -> Result<String, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| EnvelopeError::NoRandomness)?;
        let mut body = Zeroizing::new(clear.to_vec());
        let tag = self
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut body)
            .map_err(|_| EnvelopeError::Malformed)?;
        let mut out = Vec::with_capacity(NONCE_LEN + body.len() + TAG_BYTES);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The clear bytes of `sealed`, which must have been sealed for `name` under this key.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let encoded = sealed.trim().strip_prefix(PREFIX).ok_or(EnvelopeError::NotSealed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| EnvelopeError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_BYTES {
            return Err(EnvelopeError::Malformed);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Malformed)?;
        let mut body = Zeroizing::new(rest.to_vec());
        let clear = self
            .aead
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut body)
            .map_err(|_| EnvelopeError::DoesNotOpen)?;
        Ok(Zeroizing::new(clear.to_vec()))
    }
}

/// Whether `text` is a sealed value (rather than a secret written in clear).
pub fn is_sealed(text: &str) -> bool {
    text.trim().starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_name() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal("tokenHashSecret", b"hunter2").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("tokenHashSecret", &sealed).unwrap().as_slice(), b"hunter2");
        assert_eq!(key.open("jwtSecretKey", &sealed), Err(EnvelopeError::DoesNotOpen));
        let other = DataKey::generate().unwrap();
        assert_eq!(other.open("tokenHashSecret", &sealed), Err(EnvelopeError::DoesNotOpen));
    }

    #[test]
    fn each_seal_has_its_own_nonce() {
        let key = DataKey::generate().unwrap();
        assert_ne!(key.seal("k", b"v").unwrap(), key.seal("k", b"v").unwrap());
    }

    #[test]
    fn truncated_altered_or_foreign_text_is_an_error() {
        let key = DataKey::generate().unwrap();
        let sealed = key.seal("k", b"value").unwrap();
        for cut in 0..sealed.len() {
            assert!(key.open("k", &sealed[..cut]).is_err(), "cut at {cut}");
        }
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open("k", std::str::from_utf8(&altered).unwrap()), Err(EnvelopeError::DoesNotOpen));
        assert_eq!(key.open("k", "hunter2"), Err(EnvelopeError::NotSealed));
        assert_eq!(key.open("k", "sealed:v1:!!!"), Err(EnvelopeError::Malformed));
        assert_eq!(key.open("k", "sealed:v1:AAAA"), Err(EnvelopeError::Malformed));
    }

    #[test]
    fn a_key_is_exactly_32_bytes_and_never_printed() {
        assert_eq!(DataKey::from_bytes(&[1; 31]).unwrap_err(), EnvelopeError::KeyLength(31));
        let key = DataKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(***)");
    }
}
