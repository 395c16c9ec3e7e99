//! Hash tokens: `hash = base64(hmac_sha256(streamId + role + expireDate, tokenHashSecret))`, or
//! with `tokenHashFormat=ams-sha256` Ant Media Server's legacy `hex(sha256(streamId + role +
//! tokenHashSecret))`, which has no expiry.

use super::{Action, Reason};
use crate::config::values::TokenHashFormat;
use crate::secrets::{Secret, ct_eq};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::{digest, hmac};

/// A compiled hash-token check.
pub struct HashTokens {
    format: TokenHashFormat,
    key: hmac::Key,
    secret: Secret<String>,
}

impl HashTokens {
    /// A check with `secret` in the given format.
    pub fn new(secret: &Secret<String>, format: TokenHashFormat) -> Self {
        HashTokens {
            format,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
            secret: secret.clone(),
        }
    }

    /// Checks `hash` for `stream_id` and `action`; returns the expiry it grants (unix seconds).
    pub fn check(
        &self,
        stream_id: &str,
        action: Action,
        hash: &str,
        expire_date: Option<&str>,
        now: u64,
    ) -> Result<Option<u64>, Reason> {
        match self.format {
            TokenHashFormat::HmacSha256 => {
                let expire_date = expire_date.ok_or(Reason::HashExpireDateMissing)?;
                let expiry: u64 = expire_date.parse().map_err(|_| Reason::HashExpireDateMalformed)?;
                let mac = decode_base64(hash).ok_or(Reason::HashMalformed)?;
                let message = [stream_id, action.as_str(), expire_date].concat();
                hmac::verify(&self.key, message.as_bytes(), &mac).map_err(|_| Reason::HashMismatch)?;
                if expiry <= now {
                    return Err(Reason::HashExpired);
                }
                Ok(Some(expiry))
            }
            TokenHashFormat::AmsSha256 => {
                let given = decode_hex(hash).ok_or(Reason::HashMalformed)?;
                let expected = self.ams_digest(stream_id, action);
                if ct_eq(&given, expected.as_ref()) { Ok(None) } else { Err(Reason::HashMismatch) }
            }
        }
    }

    /// The hash a client must send for `stream_id`, `action` and `expire_date` (ignored by ams-sha256).
    pub fn make(&self, stream_id: &str, action: Action, expire_date: u64) -> String {
        match self.format {
            TokenHashFormat::HmacSha256 => {
                let message = format!("{stream_id}{}{expire_date}", action.as_str());
                STANDARD.encode(hmac::sign(&self.key, message.as_bytes()))
            }
            TokenHashFormat::AmsSha256 => {
                self.ams_digest(stream_id, action).as_ref().iter().map(|b| format!("{b:02x}")).collect()
            }
        }
    }

    fn ams_digest(&self, stream_id: &str, action: Action) -> digest::Digest {
        let message = [stream_id, action.as_str(), self.secret.expose()].concat();
        digest::digest(&digest::SHA256, message.as_bytes())
    }
}

/// Decodes standard or URL-safe base64, padded or not. A space counts as `+`, since a `+` left
/// unescaped in a URL query arrives as a space.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let normal: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            ' ' => '+',
            c => c,
        })
        .collect();
    STANDARD_NO_PAD.decode(normal).ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(format: TokenHashFormat) -> HashTokens {
        HashTokens::new(&Secret::new("hash-secret".into()), format)
    }

    #[test]
    fn the_readme_example_holds() {
        let h = tokens(TokenHashFormat::HmacSha256);
        assert_eq!(h.make("stream1", Action::Publish, 1_800_003_600), "0an7mkGzlxCMluO8Tq4oJFzhK7vnugbSypXAc0MwTsI=");
    }

    #[test]
    fn accepts_every_base64_spelling() {
        let h = tokens(TokenHashFormat::HmacSha256);
        let hash = h.make("s1", Action::Publish, 2000);
        let url_safe = hash.replace('+', "-").replace('/', "_");
        for spelling in [
            hash.clone(),
            hash.trim_end_matches('=').to_string(),
            url_safe.clone(),
            url_safe.trim_end_matches('=').to_string(),
            hash.replace('+', " "),
        ] {
            assert_eq!(h.check("s1", Action::Publish, &spelling, Some("2000"), 1000), Ok(Some(2000)), "{spelling}");
        }
    }

    #[test]
    fn refuses_what_it_should() {
        let h = tokens(TokenHashFormat::HmacSha256);
        let hash = h.make("s1", Action::Publish, 2000);
        assert_eq!(h.check("s1", Action::Publish, &hash, Some("2000"), 2000), Err(Reason::HashExpired));
        assert_eq!(h.check("s1", Action::Play, &hash, Some("2000"), 1000), Err(Reason::HashMismatch));
        assert_eq!(h.check("s2", Action::Publish, &hash, Some("2000"), 1000), Err(Reason::HashMismatch));
        assert_eq!(h.check("s1", Action::Publish, &hash, Some("2001"), 1000), Err(Reason::HashMismatch));
        assert_eq!(h.check("s1", Action::Publish, &hash, None, 1000), Err(Reason::HashExpireDateMissing));
        assert_eq!(h.check("s1", Action::Publish, &hash, Some("soon"), 1000), Err(Reason::HashExpireDateMalformed));
        assert_eq!(h.check("s1", Action::Publish, "not base64!", Some("2000"), 1000), Err(Reason::HashMalformed));
    }

    #[test]
    fn ams_legacy_form_has_no_expiry() {
        let h = tokens(TokenHashFormat::AmsSha256);
        let expected = digest::digest(&digest::SHA256, b"s1playhash-secret");
        let hex: String = expected.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h.make("s1", Action::Play, 0), hex);
        assert_eq!(h.check("s1", Action::Play, &hex, None, u64::MAX), Ok(None));
        assert_eq!(h.check("s1", Action::Play, &hex.to_uppercase(), None, 0), Ok(None));
        assert_eq!(h.check("s1", Action::Publish, &hex, None, 0), Err(Reason::HashMismatch));
        assert_eq!(h.check("s1", Action::Play, "abc", None, 0), Err(Reason::HashMalformed));
    }
}
