//! Credentials as they arrive on the wire: the same names in an RTMP URL query, a WHIP/WHEP
//! query and WebSocket fields (`token`, `hash` + `expireDate`, `jwt`, `subscriberId` +
//! `subscriberCode`), and a JWT in `Authorization: Bearer`.

use crate::secrets::Secret;

/// Most bytes of a query string that are read; the rest is ignored.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The credentials a client presented. Which ones a check reads depends on the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `token`: a one-time token (or the hash or JWT when one-time tokens are off).
    pub token: Option<Secret<String>>,
    /// `hash`: a hash token.
    pub hash: Option<Secret<String>>,
    /// `expireDate`: the hash token's expiry in unix seconds, as sent.
    pub expire_date: Option<String>,
    /// `jwt`, or the bearer token of an HTTP request.
    pub jwt: Option<Secret<String>>,
    /// `subscriberId`: the TOTP subscriber.
    pub subscriber_id: Option<String>,
    /// `subscriberCode`: the TOTP code.
    pub subscriber_code: Option<Secret<String>>,
}

impl Credentials {
    /// Reads the credentials in a URL query (`a=b&c=d`, percent-encoded); other names are ignored.
    /// A name given twice keeps its first value.
    pub fn from_query(query: &str) -> Self {
        let mut credentials = Credentials::default();
        for (name, value) in query_pairs(query) {
            if value.is_empty() {
                continue;
            }
            let slot_secret = |slot: &mut Option<Secret<String>>| {
                slot.get_or_insert_with(|| Secret::new(value.clone()));
            };
            match name.as_str() {
                "token" => slot_secret(&mut credentials.token),
                "hash" => slot_secret(&mut credentials.hash),
                "jwt" => slot_secret(&mut credentials.jwt),
                "subscriberCode" => slot_secret(&mut credentials.subscriber_code),
                "expireDate" => {
                    credentials.expire_date.get_or_insert(value);
                }
                "subscriberId" => {
                    credentials.subscriber_id.get_or_insert(value);
                }
                _ => {}
            }
        }
        credentials
    }

    /// Adds the JWT of an `Authorization` header (`Bearer <jwt>` or the bare JWT) unless the
    /// query already carried one.
    pub fn with_authorization(mut self, header: &str) -> Self {
        if self.jwt.is_none() {
            self.jwt = bearer(header).map(|jwt| Secret::new(jwt.to_string()));
        }
        self
    }
}

/// The name and value pairs of a URL query (`a=b&c=d`, a leading `?` allowed), percent-decoded,
/// in order; the query is cut at [`MAX_QUERY_BYTES`].
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let query = query.strip_prefix('?').unwrap_or(query);
    truncate(query, MAX_QUERY_BYTES).split('&').map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name), percent_decode(value))
    })
}

/// The token of an `Authorization` header: `Bearer <token>` (any case) or the bare token.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let token = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => header,
    };
    (!token.is_empty()).then_some(token)
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Decodes `%XX` escapes and `+` (a space); an invalid escape stays as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok()));
        match (b, escaped) {
            (_, Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Option<Secret<String>> {
        Some(Secret::new(text.to_string()))
    }

    #[test]
    fn reads_every_credential() {
        let c = Credentials::from_query(
            "?token=t1&hash=a%2Bb%3D&expireDate=1700000000&jwt=x.y.z&subscriberId=cam%201&subscriberCode=123456&other=1",
        );
        assert_eq!(c.token, s("t1"));
        assert_eq!(c.hash, s("a+b="));
        assert_eq!(c.expire_date.as_deref(), Some("1700000000"));
        assert_eq!(c.jwt, s("x.y.z"));
        assert_eq!(c.subscriber_id.as_deref(), Some("cam 1"));
        assert_eq!(c.subscriber_code, s("123456"));
    }

    #[test]
    fn first_value_wins_and_junk_is_harmless() {
        let c = Credentials::from_query("token=a&token=b&=&&token&%zz=%&jwt=%e2%82%ac%");
        assert_eq!(c.token, s("a"));
        assert_eq!(c.jwt, s("€%"));
        let huge = "token=".to_string() + &"é".repeat(MAX_QUERY_BYTES);
        assert!(Credentials::from_query(&huge).token.is_some_and(|t| t.expose().len() < MAX_QUERY_BYTES));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer("bearer   abc"), Some("abc"));
        assert_eq!(bearer("abc.def"), Some("abc.def"));
        assert_eq!(bearer("Basic dXNlcg=="), None);
        assert_eq!(bearer("  "), None);
        let c = Credentials::from_query("jwt=fromquery").with_authorization("Bearer fromheader");
        assert_eq!(c.jwt, s("fromquery"));
        assert_eq!(Credentials::default().with_authorization("Bearer h").jwt, s("h"));
    }
}
