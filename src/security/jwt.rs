//! JSON Web Tokens. Stream JWTs (publish and play) and server JWTs are HS256 only; application
//! REST API JWTs are HS256 with `jwtSecretKey`, or RS256/ES256 with the keys of `jwksURL`
//! (see [`super::jwks`]). The signature and algorithm are checked by `jsonwebtoken`; the time
//! claims are checked here against the daemon's clock.

use super::{Action, Reason};
use crate::secrets::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims rampart reads; others are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    /// `streamId`: the stream a stream JWT opens.
    #[serde(rename = "streamId")]
    pub stream_id: Option<String>,
    /// `type`: `publish` or `play`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `exp`: expiry, unix seconds.
    pub exp: Option<u64>,
    /// `nbf`: not valid before, unix seconds.
    pub nbf: Option<u64>,
}

/// Signature checking only: the time claims are ours to check, against our clock.
pub fn signature_only(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// Decodes `token` and checks its signature with `key`, allowing only the algorithms of `validation`.
pub fn verify_signature(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, Reason> {
    jsonwebtoken::decode::<Claims>(token, key, validation).map(|data| data.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => Reason::JwtBadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            Reason::JwtAlgorithmRefused
        }
        _ => undecodable(token),
    })
}

/// Why a token that cannot be decoded is refused: a header naming an algorithm jsonwebtoken does
/// not know (`none`) is refused as such; anything else is malformed.
pub fn undecodable(token: &str) -> Reason {
    match declared_algorithm(token) {
        Some(alg) if alg.parse::<Algorithm>().is_err() => Reason::JwtAlgorithmRefused,
        _ => Reason::JwtMalformed,
    }
}

/// The `alg` a token's header declares, if the header can be read.
fn declared_algorithm(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    header.get("alg")?.as_str().map(str::to_string)
}

/// Checks `exp` and `nbf` at `now`; returns the expiry.
pub fn check_times(claims: &Claims, now: u64, exp_required: bool) -> Result<Option<u64>, Reason> {
    match claims.exp {
        None if exp_required => return Err(Reason::JwtExpMissing),
        Some(exp) if exp <= now => return Err(Reason::JwtExpired),
        _ => {}
    }
    if claims.nbf.is_some_and(|nbf| nbf > now) {
        return Err(Reason::JwtNotYetValid);
    }
    Ok(claims.exp)
}

/// An HS256 key with its validation, for stream and server JWTs.
pub struct Hs256 {
    key: DecodingKey,
    validation: Validation,
}

impl Hs256 {
    /// A check with `secret` as the HMAC key.
    pub fn new(secret: &Secret<String>) -> Self {
        Hs256 {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation: signature_only(Algorithm::HS256),
        }
    }

    /// Checks a stream JWT: `streamId` equal, `type` equal to the action, `exp` required.
    /// Returns the expiry it grants.
    pub fn check_stream(&self, token: &str, stream_id: &str, action: Action, now: u64) -> Result<Option<u64>, Reason> {
        let claims = verify_signature(token, &self.key, &self.validation)?;
        if claims.stream_id.as_deref() != Some(stream_id) {
            return Err(Reason::JwtWrongStream);
        }
        if claims.kind.as_deref() != Some(action.as_str()) {
            return Err(Reason::JwtWrongType);
        }
        check_times(&claims, now, true)
    }

    /// Checks a server or API JWT: the signature, and `exp` and `nbf` when present.
    pub fn check_api(&self, token: &str, now: u64) -> Result<(), Reason> {
        let claims = verify_signature(token, &self.key, &self.validation)?;
        check_times(&claims, now, false).map(drop)
    }
}
