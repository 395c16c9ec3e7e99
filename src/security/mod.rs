//! The security pipeline: every publish and play, on every protocol, becomes one
//! [`AccessRequest`] that [`Pipeline::check`] decides. The pipeline is pure logic (time comes in
//! the request) and does no I/O: what it needs from outside comes through ports it defines (the
//! [`webhook::Webhook`], the [`jwks::KeySource`], the [`store::SecurityStore`]), and the
//! admission (`crate::admission`) drives it: [`Pipeline::check`], the webhook, then
//! [`Pipeline::resume`]; an allowed request is a [`CommitPlan`] that uses no credential up until
//! the session holds its place and [`Pipeline::commit`] consumes them (or
//! [`Pipeline::withdraw`] leaves them unused).
//!
//! Checks run in a fixed order, and every enabled one must pass: lockout, CIDR, registered
//! stream or room, one-time token, hash token, TOTP, stream JWT, then the webhook, asked only
//! when everything local allowed. With none enabled, everything is allowed, as the seed's
//! defaults say. Clients get a generic refusal; the [`Reason`] goes to the audit trail.

pub mod audit;
pub mod credentials;
pub mod hash_token;
pub mod ip_filter;
pub mod jwks;
pub mod jwt;
pub mod lockout;
mod pipeline;
pub mod sessions;
pub mod store;
pub mod totp;
pub mod totp_throttle;
pub mod webhook;

pub use credentials::Credentials;
pub use pipeline::{CommitPlan, Pipeline, WebhookPending};

use crate::clock::Clock;
use crate::config::SecretSetting;
use crate::secrets::Secret;
use std::net::IpAddr;
use std::time::Instant;

/// What a client wants to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a stream in.
    Publish,
    /// Take a stream out.
    Play,
}

impl Action {
    /// The role's name in tokens and webhooks: `publish` or `play`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }

    /// The action named `name` (see [`Action::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Action::Publish, Action::Play].into_iter().find(|a| a.as_str() == name)
    }
}

/// The protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RTMP over TCP.
    Rtmp,
    /// RTMP over TLS.
    Rtmps,
    /// WebRTC ingest.
    Whip,
    /// WebRTC playback.
    Whep,
    /// AMS-style WebSocket signaling.
    WebSocket,
}

impl Protocol {
    /// The protocol's name in audit events and webhooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtmps => "rtmps",
            Protocol::Whip => "whip",
            Protocol::Whep => "whep",
            Protocol::WebSocket => "websocket",
        }
    }
}

/// The moment a request is decided, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Wall-clock unix seconds, for expiry dates in credentials.
    pub unix: u64,
    /// Monotonic time, for lockout windows.
    pub instant: Instant,
}

impl Now {
    /// Reads `clock`.
    pub fn from_clock(clock: &dyn Clock) -> Self {
        Now { unix: clock.unix_secs(), instant: clock.instant() }
    }
}

/// One publish or play to decide.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    /// Publish or play.
    pub action: Action,
    /// The protocol it came in on.
    pub protocol: Protocol,
    /// The application (`LiveApp`).
    pub app: String,
    /// The stream.
    pub stream_id: String,
    /// The conference room, if the client named one.
    pub room_id: Option<String>,
    /// The peer's address.
    pub peer_ip: IpAddr,
    /// What the client presented.
    pub credentials: Credentials,
    /// When.
    pub now: Now,
}

/// Why a request was refused. The text goes to the audit trail, never to the client, and never
/// holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The address is locked out after repeated refusals.
    #[error("address locked out after repeated refusals")]
    LockedOut,
    /// No such application.
    #[error("unknown application")]
    UnknownApp,
    /// The address is not in allowedPublisherCIDR.
    #[error("address not in allowedPublisherCIDR")]
    PeerNotAllowed,
    /// acceptOnlyStreamsInDataStore and the stream is not registered.
    #[error("stream not registered (acceptOnlyStreamsInDataStore)")]
    StreamNotRegistered,
    /// acceptOnlyRoomsInDataStore and the room is not registered.
    #[error("room not registered (acceptOnlyRoomsInDataStore)")]
    RoomNotRegistered,
    /// No `token` given.
    #[error("one-time token missing")]
    OneTimeTokenMissing,
    /// The token does not exist or was used.
    #[error("one-time token unknown or already used")]
    OneTimeTokenUnknown,
    /// The token was consumed by a concurrent request.
    #[error("one-time token already used")]
    OneTimeTokenUsed,
    /// The token is for the other action.
    #[error("one-time token is for another action")]
    OneTimeTokenWrongType,
    /// The token is for another stream.
    #[error("one-time token is for another stream")]
    OneTimeTokenWrongStream,
    /// The token is bound to another room.
    #[error("one-time token is for another room")]
    OneTimeTokenWrongRoom,
    /// The token's expireDate has passed.
    #[error("one-time token expired")]
    OneTimeTokenExpired,
    /// No `hash` given.
    #[error("hash token missing")]
    HashMissing,
    /// The hash is not base64 (or hex for ams-sha256).
    #[error("hash token malformed")]
    HashMalformed,
    /// No `expireDate` with the hash.
    #[error("hash token expireDate missing")]
    HashExpireDateMissing,
    /// `expireDate` is not unix seconds.
    #[error("hash token expireDate malformed")]
    HashExpireDateMalformed,
    /// The hash does not match stream, role and expiry.
    #[error("hash token does not match")]
    HashMismatch,
    /// The hash's expireDate has passed.
    #[error("hash token expired")]
    HashExpired,
    /// No `subscriberId` or `subscriberCode` given.
    #[error("TOTP subscriberId or subscriberCode missing")]
    TotpMissing,
    /// The code is wrong (or from another step, subscriber, stream or role).
    #[error("TOTP code wrong")]
    TotpWrong,
    /// Too many wrong codes for this subscriber, stream or application in this code window.
    #[error("TOTP tries throttled (too many wrong codes)")]
    TotpThrottled,
    /// The code was used already.
    #[error("TOTP code already used")]
    TotpReplayed,
    /// Too many codes are inside their window to remember another (fail closed).
    #[error("TOTP replay table full")]
    TotpReplayTableFull,
    /// The subscriber is not registered and the application has no TOTP secret for the role.
    #[error("TOTP subscriber not registered")]
    SubscriberUnknown,
    /// The subscriber may not take this action.
    #[error("TOTP subscriber not allowed this action")]
    SubscriberWrongType,
    /// The subscriber is blocked.
    #[error("TOTP subscriber blocked")]
    SubscriberBlocked,
    /// The subscriber's TOTP key is kept sealed but does not open on this box (another TPM, an
    /// altered value): refused, never taken for a subscriber without a key. Registering the
    /// subscriber again seals a new key.
    #[error("TOTP subscriber's key does not open: {0}")]
    SubscriberKeyUnopenable(String),
    /// No JWT given.
    #[error("JWT missing")]
    JwtMissing,
    /// The JWT cannot be decoded.
    #[error("JWT malformed")]
    JwtMalformed,
    /// The JWT's algorithm is not accepted (`none`, or another than the key's).
    #[error("JWT algorithm refused")]
    JwtAlgorithmRefused,
    /// The JWT's signature is wrong.
    #[error("JWT signature invalid")]
    JwtBadSignature,
    /// The JWT names no key the JWKS has.
    #[error("JWT key id unknown")]
    JwtUnknownKey,
    /// The JWT has no `exp`.
    #[error("JWT exp missing")]
    JwtExpMissing,
    /// The JWT's `exp` has passed.
    #[error("JWT expired")]
    JwtExpired,
    /// The JWT's `nbf` has not come.
    #[error("JWT not yet valid (nbf)")]
    JwtNotYetValid,
    /// The JWT is for another stream.
    #[error("JWT is for another stream")]
    JwtWrongStream,
    /// The JWT's `type` is not the action.
    #[error("JWT type is not the action")]
    JwtWrongType,
    /// The webhook answered with another status than 200.
    #[error("webhook refused with HTTP {0}")]
    WebhookRefused(u16),
    /// The webhook could not be asked (fail closed).
    #[error("webhook failed: {0}")]
    WebhookFailed(String),
    /// Allowed, but the session could not start (stream in use or not live, no place, no
    /// port, an offer that cannot be answered): no credential was used.
    #[error("not started: {0}")]
    NotStarted(String),
    /// Allowed, but the one-time token could not be consumed durably (the data partition
    /// failed): refused rather than admitted with a token a power cut could bring back.
    #[error("one-time token not consumed: the datastore cannot be written")]
    StoreUnavailable,
    /// The secret the check needs (the setting named) is sealed and does not open on this box:
    /// refused (fail closed) until it is entered again. The box's fault: counts for no lockout.
    #[error("{0} cannot be opened")]
    SecretUnopenable(&'static str),
}

/// The secret setting `key` in force: `Ok(None)` when unset, [`Reason::SecretUnopenable`] when
/// it is sealed and does not open (never taken as unset).
pub fn secret_in_force<'a>(
    setting: &'a SecretSetting,
    key: &'static str,
) -> Result<Option<&'a Secret<String>>, Reason> {
    setting.in_force().map_err(|_| Reason::SecretUnopenable(key))
}

/// What `make` builds of the secret setting `key` (an unset one builds with an empty key, which
/// the settings' rules never let an enabled mechanism have), or why it cannot be built.
pub fn keyed<T>(
    setting: &SecretSetting,
    key: &'static str,
    make: impl FnOnce(&Secret<String>) -> T,
) -> Result<T, Reason> {
    Ok(match secret_in_force(setting, key)? {
        Some(secret) => make(secret),
        None => make(&Secret::default()),
    })
}

/// How far ahead a grant's expiry still ends its session: 100 years, in seconds.
pub const GRANT_HORIZON_SECS: u64 = 100 * 365 * 86_400;

/// What an admission rests on, so that the session can end when it does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Unix seconds at which the earliest expiring credential (JWT `exp`, hash `expireDate`) ends.
    pub expires_at: Option<u64>,
    /// The one-time token that admitted it; deleting the stream's tokens ends the session.
    pub one_time_token: Option<Secret<String>>,
    /// The TOTP subscriber that admitted it; blocking the subscriber ends the session.
    pub subscriber_id: Option<String>,
    /// The mechanisms that admitted it, in check order.
    pub admitted_by: Vec<&'static str>,
}

impl Grant {
    /// When the grant ends, on `clock`'s monotonic time, if it expires within
    /// [`GRANT_HORIZON_SECS`]. A credential may carry any u64 as its expiry; one past the horizon
    /// ends no session, so no timer is ever set where the monotonic clock (or tokio's timer wheel,
    /// which adds to deadlines) could overflow.
    pub fn ends_at(&self, clock: &dyn Clock) -> Option<Instant> {
        let left = self.expires_at?.saturating_sub(clock.unix_secs());
        if left > GRANT_HORIZON_SECS {
            return None;
        }
        clock.instant().checked_add(std::time::Duration::from_secs(left))
    }

    fn limit(&mut self, expiry: Option<u64>) {
        self.expires_at = match (self.expires_at, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The outcome of a request, once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted, on these grounds.
    Allow(Grant),
    /// Refused, for this reason.
    Deny(Reason),
}

/// What the checks concluded, before any credential is used.
#[derive(Debug)]
pub enum Verdict {
    /// Allowed: to be committed once the session holds its place.
    Allow(Box<CommitPlan>),
    /// Refused, for this reason (audited already).
    Deny(Reason),
}

/// What [`Pipeline::check`] returns: a verdict, or the webhook to ask before one.
#[derive(Debug)]
pub enum Step {
    /// Decided.
    Decided(Verdict),
    /// Every local check passed; ask the webhook, then [`Pipeline::resume`].
    AskWebhook(Box<WebhookPending>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_grant_ends_when_its_credential_expires_and_far_expiries_end_nothing() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let ends = |expires_at| Grant { expires_at, ..Grant::default() }.ends_at(&clock);
        assert_eq!(ends(Some(1_800_000_060)), Some(clock.instant() + std::time::Duration::from_secs(60)));
        assert_eq!(ends(Some(1_700_000_000)), Some(clock.instant()), "expired: ends now");
        assert_eq!(ends(None), None);
        for far in [
            u64::MAX,
            u64::MAX - 1,
            10_000_000_000_000_000_000,
            i64::MAX as u64,
            1_800_000_000 + GRANT_HORIZON_SECS + 1,
        ] {
            assert_eq!(ends(Some(far)), None, "{far}");
        }
    }
}
