//! Application REST API JWTs (`jwtControlEnabled`): HS256 with `jwtSecretKey`, or, when
//! `jwksURL` is set, RS256/ES256 with the key the token's `kid` names in that JWKS. The JWKS is
//! fetched through a [`KeySource`] (the rim fetches it over HTTP(S)), cached, refreshed hourly
//! and when an unknown `kid` arrives (at most once per [`MIN_FETCH_GAP`]); a failed fetch keeps
//! the cached keys.

use super::jwt::{Hs256, check_times, signature_only, undecodable, verify_signature};
use super::{Now, Reason, keyed};
use crate::config::AppSettings;
use crate::config::values::HttpUrl;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the keys are fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// The least time between two fetches, however many unknown key ids arrive.
pub const MIN_FETCH_GAP: Duration = Duration::from_secs(30);

/// The future of one JWKS fetch: the document's bytes, or why there are none.
pub type Fetching<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Where JWKS documents come from: the port the keys are fetched through.
pub trait KeySource: Send + Sync {
    /// Fetches the JWKS document at `url` within the implementation's bounds.
    fn fetch<'a>(&'a self, url: &'a HttpUrl) -> Fetching<'a>;
}

/// How an application checks its REST API JWTs.
pub enum ApiJwt {
    /// HS256 with jwtSecretKey.
    Secret(Hs256),
    /// RS256/ES256 with the keys of jwksURL.
    Jwks(JwksKeys),
    /// jwtSecretKey is sealed and does not open: every call is refused with this reason.
    Unopenable(Reason),
}

impl ApiJwt {
    /// The check the settings ask for, or `None` when jwtControlEnabled is off.
    pub fn from_settings(app: &AppSettings, source: &Arc<dyn KeySource>) -> Option<Self> {
        if !app.jwt_control_enabled {
            return None;
        }
        Some(match &app.jwks_url {
            Some(url) => ApiJwt::Jwks(JwksKeys::new(url.clone(), source.clone())),
            None => match keyed(&app.jwt_secret_key, "jwtSecretKey", Hs256::new) {
                Ok(hs256) => ApiJwt::Secret(hs256),
                Err(reason) => ApiJwt::Unopenable(reason),
            },
        })
    }

    /// Checks an API JWT at `now`.
    pub async fn verify(&self, token: &str, now: Now) -> Result<(), Reason> {
        match self {
            ApiJwt::Secret(hs256) => hs256.check_api(token, now.unix),
            ApiJwt::Jwks(keys) => keys.verify(token, now).await,
            ApiJwt::Unopenable(reason) => Err(reason.clone()),
        }
    }
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// The keys of a JWKS URL, cached.
pub struct JwksKeys {
    url: HttpUrl,
    source: Arc<dyn KeySource>,
    cache: Mutex<Cache>,
}

impl JwksKeys {
    /// Keys to be fetched from `url` when first needed.
    pub fn new(url: HttpUrl, source: Arc<dyn KeySource>) -> Self {
        JwksKeys { url, source, cache: Mutex::new(Cache::default()) }
    }

    /// Checks `token`'s signature with the key its `kid` names, then `exp` and `nbf` if present.
    pub async fn verify(&self, token: &str, now: Now) -> Result<(), Reason> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| undecodable(token))?;
        let kid = header.kid.unwrap_or_default();
        let stale = self.lock().fetched.is_none_or(|at| now.instant.duration_since(at) >= REFRESH_EVERY);
        if stale {
            self.refresh(now.instant).await;
        }
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh(now.instant).await;
                self.key(&kid).ok_or(Reason::JwtUnknownKey)?
            }
        };
        let claims = verify_signature(token, &key.0, &signature_only(key.1))?;
        check_times(&claims, now.unix, false).map(drop)
    }

    /// The key named `kid` (or the only key, when the token names none).
    fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let cache = self.lock();
        match (kid, cache.keys.len()) {
            ("", 1) => cache.keys.values().next().cloned(),
            _ => cache.keys.get(kid).cloned(),
        }
    }

    /// Fetches the JWKS again unless the last attempt was too recent; keeps the old keys on failure.
    async fn refresh(&self, now: Instant) {
        {
            let mut cache = self.lock();
            if cache.last_attempt.is_some_and(|at| now.duration_since(at) < MIN_FETCH_GAP) {
                return;
            }
            cache.last_attempt = Some(now);
        }
        let keys = self.source.fetch(&self.url).await.and_then(|body| parse_jwks(&body));
        match keys {
            Ok(keys) => {
                let mut cache = self.lock();
                cache.keys = keys;
                cache.fetched = Some(now);
            }
            Err(why) => log::warn!("JWKS {} not fetched ({why}); keeping the cached keys", self.url),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A JWKS document whose keys are read one by one: a key jsonwebtoken cannot read (ES512,
/// ES256K, X25519, ...) must not hide the others.
#[derive(serde::Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// The RS256 and ES256 keys of a JWKS document, by key id; other keys are skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
    let set: RawJwks = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in set.keys.into_iter().filter_map(|key| serde_json::from_value::<Jwk>(key).ok()) {
        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_)) | (None, AlgorithmParameters::RSA(_)) => {
                Algorithm::RS256
            }
            (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(ec))
            | (None, AlgorithmParameters::EllipticCurve(ec))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(jwk.common.key_id.clone().unwrap_or_default(), (key, algorithm));
        }
    }
    Ok(keys)
}
