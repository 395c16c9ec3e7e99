//! An application's REST API under `/<App>/rest/v2`, in Ant Media Server's paths and shapes:
//! broadcasts, one-time and JWT tokens, TOTP subscribers and conference rooms. Every change is
//! written to the datastore before it is answered, and audited; revoking credentials ends the
//! sessions they admitted.

use super::reply::{Reply, failure, json, not_found, page, parse_body, query_param, success};
use super::server::{Call, Http, audit};
use crate::config::SecretSetting;
use crate::media::LiveStatus;
use crate::secrets::{Secret, random_token};
use crate::security::hash_token::HashTokens;
use crate::security::store::{OneTimeToken, Subscriber, SubscriberKey, SubscriberKind};
use crate::security::{Action, Reason, secret_in_force, totp};
use crate::store::{Broadcast, Datastore, KeptToken, StoreError};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest stream, room or subscriber id accepted.
pub const MAX_ID_CHARS: usize = 128;
/// Longest block of a subscriber, in seconds (ten years).
pub const MAX_BLOCK_SECONDS: u64 = 10 * 365 * 86_400;

/// Answers `rest` (the path after `/<App>/rest/v2/`) for `app`.
pub async fn handle(call: &Call, app: &str, rest: &[&str], http: &Http) -> Reply {
    let Some(store) = http.state.stores.get(app) else { return not_found() };
    let api = AppApi { call, app, store, http };
    let result = match (call.method.as_str(), rest) {
        ("POST", ["broadcasts", "create"]) => api.create_broadcast().await,
        ("GET", ["broadcasts", "list", offset, size]) => api.list_broadcasts(offset, size),
        ("POST", ["broadcasts", "conference-rooms"]) => api.create_room().await,
        ("GET", ["broadcasts", "conference-rooms", "list", offset, size]) => api.list_rooms(offset, size),
        ("DELETE", ["broadcasts", "conference-rooms", room]) => api.delete_room(room).await,
        ("GET", ["broadcasts", id]) => api.get_broadcast(id),
        ("DELETE", ["broadcasts", id]) => api.delete_broadcast(id).await,
        ("GET", ["broadcasts", id, "token"]) => api.one_time_token(id).await,
        ("GET", ["broadcasts", id, "jwt-token"]) => api.jwt_token(id),
        ("GET", ["broadcasts", id, "hash-token"]) => api.hash_token(id),
        ("DELETE", ["broadcasts", id, "tokens"]) => api.delete_tokens(id).await,
        ("GET", ["broadcasts", id, "tokens", "list", offset, size]) => api.list_tokens(id, offset, size),
        ("POST", ["broadcasts", id, "subscribers"]) => api.add_subscriber(id).await,
        ("GET", ["broadcasts", id, "subscribers", "list", offset, size]) => api.list_subscribers(id, offset, size),
        ("DELETE", ["broadcasts", id, "subscribers", sid]) => api.delete_subscriber(id, sid).await,
        ("GET", ["broadcasts", id, "subscribers", sid, "totp"]) => api.totp(id, sid),
        ("PUT", ["broadcasts", id, "subscribers", sid, "block", seconds, kind]) => {
            api.block(id, sid, seconds, kind).await
        }
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|refusal| refusal)
}

type Answer = Result<Reply, Reply>;

/// The application's secret setting `key`, to make a token with: 400 when it is not set, 503
/// when it is sealed and does not open (no token is made with a key the box cannot open).
fn app_secret<'s>(setting: &'s SecretSetting, key: &'static str) -> Result<&'s Secret<String>, Reply> {
    secret_in_force(setting, key)
        .map_err(unopenable)?
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, format!("{key} is not set for this application")))
}

/// The answer when a secret a call needs does not open on this box.
fn unopenable(reason: Reason) -> Reply {
    failure(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}: enter it again in the settings"))
}

struct AppApi<'a> {
    call: &'a Call,
    app: &'a str,
    store: &'a Datastore,
    http: &'a Http,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewBroadcast {
    stream_id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSubscriber {
    subscriber_id: String,
    b32_secret: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewRoom {
    room_id: String,
}

impl AppApi<'_> {
    /// Audits a change that was made, and answers `reply`.
    fn changed(&self, what: &str, reply: Reply) -> Answer {
        audit(self.call, self.app, true, what, self.http);
        Ok(reply)
    }

    fn live(&self, stream_id: &str) -> Option<LiveStatus> {
        self.http.state.hub.live_streams().into_iter().find(|l| l.app == self.app && l.stream == stream_id)
    }

    fn broadcast_json(&self, b: &Broadcast) -> Value {
        let live = self.live(&b.stream_id);
        json!({
            "streamId": b.stream_id,
            "name": b.name,
            "type": b.kind,
            "status": if live.is_some() { "broadcasting" } else { "created" },
            "date": b.created_ms,
            "rtmpViewerCount": live.map_or(0, |l| l.readers),
        })
    }

    async fn create_broadcast(&self) -> Answer {
        let new: NewBroadcast = parse_body(&self.call.body)?;
        let stream_id = match new.stream_id.filter(|s| !s.is_empty()) {
            Some(id) => checked_id("streamId", &id)?,
            None => random_token(12).ok_or_else(no_randomness)?,
        };
        if new.kind.as_deref().is_some_and(|k| k != "liveStream") {
            return Err(failure(StatusCode::BAD_REQUEST, "type: only liveStream is supported"));
        }
        let mut broadcast = Broadcast::new(&stream_id, self.http.now().unix * 1000);
        if let Some(name) = new.name.filter(|n| !n.is_empty()) {
            if name.chars().count() > 256 || name.chars().any(char::is_control) {
                return Err(failure(StatusCode::BAD_REQUEST, "name: at most 256 printable characters"));
            }
            broadcast.name = name;
        }
        self.store.add_broadcast(broadcast.clone()).await.map_err(store_failure)?;
        self.changed("broadcast created", json(StatusCode::OK, &self.broadcast_json(&broadcast)))
    }

    fn list_broadcasts(&self, offset: &str, size: &str) -> Answer {
        let (offset, size) = page(offset, size)?;
        let list: Vec<Value> = self.store.broadcasts(offset, size).iter().map(|b| self.broadcast_json(b)).collect();
        Ok(json(StatusCode::OK, &list))
    }

    fn get_broadcast(&self, id: &str) -> Answer {
        let broadcast = self.store.broadcast(id).ok_or_else(|| no_broadcast(id))?;
        Ok(json(StatusCode::OK, &self.broadcast_json(&broadcast)))
    }

    async fn delete_broadcast(&self, id: &str) -> Answer {
        if !self.store.delete_broadcast(id).await.map_err(store_failure)? {
            return Err(no_broadcast(id));
        }
        self.http.state.sessions.end_stream(self.app, id);
        self.changed("broadcast deleted", success(Some(id)))
    }

    /// The `type` query parameter: `publish` or `play`.
    fn action_param(&self) -> Result<Action, Reply> {
        query_param(self.call.query.as_deref(), "type")
            .and_then(|name| Action::from_name(&name))
            .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "type must be publish or play"))
    }

    /// The `expireDate` query parameter: unix seconds, in the future, clamped to
    /// `server.maxTokenLifetime` from now.
    fn expire_date_param(&self) -> Result<Expiry, Reply> {
        let text = query_param(self.call.query.as_deref(), "expireDate").unwrap_or_default();
        let asked: u64 = text
            .parse()
            .map_err(|_| failure(StatusCode::BAD_REQUEST, "expireDate must be unix seconds (a whole number)"))?;
        let now = self.http.now().unix;
        if asked <= now {
            return Err(failure(StatusCode::BAD_REQUEST, "expireDate is in the past"));
        }
        let lifetime = self.call.settings.server.max_token_lifetime.0.as_secs();
        Ok(Expiry::clamped(asked, now, lifetime))
    }

    async fn one_time_token(&self, id: &str) -> Answer {
        let stream_id = checked_id("streamId", id)?;
        let (expiry, kind) = (self.expire_date_param()?, self.action_param()?);
        let expire_date = expiry.date;
        let room_id = match query_param(self.call.query.as_deref(), "roomId").filter(|r| !r.is_empty()) {
            Some(room) => Some(checked_id("roomId", &room)?),
            None => None,
        };
        let token_id = random_token(24).ok_or_else(no_randomness)?;
        let token =
            OneTimeToken { token_id: Secret::new(token_id), stream_id, kind, expire_date, room_id: room_id.clone() };
        let answer = token_json(token.token_id.expose(), &token.stream_id, &expiry, kind, room_id.as_deref());
        self.store.add_token(token, self.http.now().unix).await.map_err(store_failure)?;
        self.changed("one-time token made", json(StatusCode::OK, &answer))
    }

    fn jwt_token(&self, id: &str) -> Answer {
        let stream_id = checked_id("streamId", id)?;
        let (expiry, kind) = (self.expire_date_param()?, self.action_param()?);
        let expire_date = expiry.date;
        let settings = &self.call.settings;
        let Some(app) = settings.apps.get(self.app) else { return Err(not_found()) };
        let secret = app_secret(&app.jwt_stream_secret_key, "jwtStreamSecretKey")?;
        let claims = json!({ "streamId": stream_id, "type": kind.as_str(), "exp": expire_date });
        let key = jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes());
        let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
            .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, format!("JWT not made: {e}")))?;
        self.changed("stream JWT made", json(StatusCode::OK, &token_json(&jwt, &stream_id, &expiry, kind, None)))
    }

    /// A hash token (rampart's own call, for the panel's URL maker): `tokenId` is the `hash` to
    /// send with `expireDate`.
    fn hash_token(&self, id: &str) -> Answer {
        let stream_id = checked_id("streamId", id)?;
        let (expiry, kind) = (self.expire_date_param()?, self.action_param()?);
        let expire_date = expiry.date;
        let settings = &self.call.settings;
        let Some(app) = settings.apps.get(self.app) else { return Err(not_found()) };
        let secret = app_secret(&app.token_hash_secret, "tokenHashSecret")?;
        let hash = HashTokens::new(secret, app.token_hash_format).make(&stream_id, kind, expire_date);
        Ok(json(StatusCode::OK, &token_json(&hash, &stream_id, &expiry, kind, None)))
    }

    /// The stream's unused one-time tokens, in AMS's shape but without their ids, which are
    /// not kept: `tokenId` is null and `tokenSha256` the base64url SHA-256 of the id.
    fn list_tokens(&self, id: &str, offset: &str, size: &str) -> Answer {
        let (offset, size) = page(offset, size)?;
        let list: Vec<Value> = self.store.tokens(id, offset, size).iter().map(kept_token_json).collect();
        Ok(json(StatusCode::OK, &list))
    }

    async fn delete_tokens(&self, id: &str) -> Answer {
        let deleted = self.store.delete_tokens(id).await.map_err(store_failure)?;
        let ended = self.http.state.sessions.revoke_one_time_tokens(self.app, id);
        let what = format!("{deleted} token(s) deleted, {ended} session(s) ended");
        self.changed(&what, success(Some(id)))
    }

    async fn add_subscriber(&self, id: &str) -> Answer {
        let stream_id = checked_id("streamId", id)?;
        let new: NewSubscriber = parse_body(&self.call.body)?;
        let subscriber_id = checked_id("subscriberId", &new.subscriber_id)?;
        let secret = totp::decode_base32(&new.b32_secret)
            .filter(|key| key.len() >= 10)
            .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "b32Secret must be base32 of at least 10 bytes"))?;
        let kind = subscriber_kind(new.kind.as_deref().unwrap_or("play"))?;
        let subscriber = Subscriber {
            subscriber_id: subscriber_id.clone(),
            stream_id,
            secret: SubscriberKey::Open(Secret::new(secret)),
            kind,
            period: None,
            blocked_publish_until: 0,
            blocked_play_until: 0,
        };
        self.store.put_subscriber(subscriber).await.map_err(store_failure)?;
        self.changed("subscriber added", success(Some(&subscriber_id)))
    }

    fn list_subscribers(&self, id: &str, offset: &str, size: &str) -> Answer {
        let (offset, size) = page(offset, size)?;
        let list: Vec<Value> = self.store.subscribers(id, offset, size).iter().map(subscriber_json).collect();
        Ok(json(StatusCode::OK, &list))
    }

    async fn delete_subscriber(&self, id: &str, sid: &str) -> Answer {
        if !self.store.delete_subscriber(id, sid).await.map_err(store_failure)? {
            return Err(failure(StatusCode::NOT_FOUND, format!("no subscriber {sid:?} for stream {id:?}")));
        }
        self.http.state.sessions.block_subscriber(self.app, id, sid);
        self.changed("subscriber deleted", success(Some(sid)))
    }

    /// The subscriber's TOTP code now: with its own key when registered, else with the key the
    /// application's timeTokenSecretFor<type> derives for it.
    fn totp(&self, id: &str, sid: &str) -> Answer {
        let now = self.http.now().unix;
        let settings = &self.call.settings;
        let Some(app) = settings.apps.get(self.app) else { return Err(not_found()) };
        let code = match crate::security::store::SecurityStore::subscriber(self.store, id, sid) {
            Some(s) => match &s.secret {
                SubscriberKey::Open(key) => {
                    totp::code_at(key.expose(), now, u64::from(s.period.unwrap_or(app.time_token_period)))
                }
                SubscriberKey::Unopenable(why) => {
                    let why = format!("the TOTP key of subscriber {sid:?} does not open ({why}): register it again");
                    return Err(failure(StatusCode::SERVICE_UNAVAILABLE, why));
                }
            },
            None => {
                let action = self.action_param()?;
                let (setting, name) = match action {
                    Action::Publish => (&app.time_token_secret_for_publish, "timeTokenSecretForPublish"),
                    Action::Play => (&app.time_token_secret_for_play, "timeTokenSecretForPlay"),
                };
                let Some(secret) = secret_in_force(setting, name).map_err(unopenable)? else {
                    return Err(failure(StatusCode::NOT_FOUND, format!("no subscriber {sid:?} for stream {id:?}")));
                };
                let key = totp::derived_key(&totp::app_key(secret.expose().as_bytes()), sid, id, action);
                totp::code_at(&key, now, u64::from(app.time_token_period))
            }
        };
        Ok(json(StatusCode::OK, &json!({ "success": true, "message": code, "dataId": Value::Null })))
    }

    async fn block(&self, id: &str, sid: &str, seconds: &str, kind: &str) -> Answer {
        let seconds: u64 = seconds
            .parse()
            .ok()
            .filter(|s| *s <= MAX_BLOCK_SECONDS)
            .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "seconds must be a whole number up to ten years"))?;
        let actions = subscriber_kind(kind)?;
        let until = self.http.now().unix + seconds;
        if !self.store.block_subscriber(id, sid, actions, until).await.map_err(store_failure)? {
            return Err(failure(StatusCode::NOT_FOUND, format!("no subscriber {sid:?} for stream {id:?}")));
        }
        let ended = if seconds > 0 { self.http.state.sessions.block_subscriber(self.app, id, sid) } else { 0 };
        self.changed(&format!("subscriber blocked for {seconds} s, {ended} session(s) ended"), success(Some(sid)))
    }

    async fn create_room(&self) -> Answer {
        let new: NewRoom = parse_body(&self.call.body)?;
        let room_id = checked_id("roomId", &new.room_id)?;
        self.store.add_room(&room_id).await.map_err(store_failure)?;
        self.changed("room created", json(StatusCode::OK, &json!({ "roomId": room_id })))
    }

    fn list_rooms(&self, offset: &str, size: &str) -> Answer {
        let (offset, size) = page(offset, size)?;
        let rooms: Vec<Value> = self.store.rooms(offset, size).into_iter().map(|r| json!({ "roomId": r })).collect();
        Ok(json(StatusCode::OK, &rooms))
    }

    async fn delete_room(&self, room: &str) -> Answer {
        if !self.store.delete_room(room).await.map_err(store_failure)? {
            return Err(failure(StatusCode::NOT_FOUND, format!("no room {room:?}")));
        }
        self.changed("room deleted", success(Some(room)))
    }
}

/// AMS's Token object.
/// A token's expiry as made: the date asked for, or the latest that `server.maxTokenLifetime`
/// allows.
struct Expiry {
    date: u64,
    clamped_from: Option<u64>,
}

impl Expiry {
    fn clamped(asked: u64, now: u64, lifetime: u64) -> Self {
        let latest = now.saturating_add(lifetime);
        if asked > latest {
            Expiry { date: latest, clamped_from: Some(asked) }
        } else {
            Expiry { date: asked, clamped_from: None }
        }
    }
}

/// A token in AMS's shape; a clamped expiry says so in `message`.
fn token_json(token_id: &str, stream_id: &str, expiry: &Expiry, kind: Action, room_id: Option<&str>) -> Value {
    let mut answer = json!({ "tokenId": token_id, "streamId": stream_id, "expireDate": expiry.date, "type": kind.as_str(), "roomId": room_id });
    if let Some(asked) = expiry.clamped_from {
        answer["message"] = json!(format!(
            "expireDate {asked} is past server.maxTokenLifetime: the token expires at {} instead",
            expiry.date
        ));
    }
    answer
}

/// A kept token as the token list shows it: the hash of its id in place of the id.
fn kept_token_json(t: &KeptToken) -> Value {
    json!({
        "tokenId": Value::Null,
        "tokenSha256": t.hash.text(),
        "streamId": t.stream_id,
        "expireDate": t.expire_date,
        "type": t.kind.as_str(),
        "roomId": t.room_id,
    })
}

/// A subscriber as the API shows it: never its key.
fn subscriber_json(s: &Subscriber) -> Value {
    json!({
        "subscriberId": s.subscriber_id,
        "streamId": s.stream_id,
        "type": s.kind.name(),
        "blockedPublishUntil": s.blocked_publish_until,
        "blockedPlayUntil": s.blocked_play_until,
    })
}

fn subscriber_kind(name: &str) -> Result<SubscriberKind, Reply> {
    SubscriberKind::from_name(name)
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "type must be publish, play or publish_play"))
}

/// `id` if it is 1 to 128 of `A-Z a-z 0-9 _ - .`; else a 400 naming `field`.
fn checked_id(field: &str, id: &str) -> Result<String, Reply> {
    let fits = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if fits {
        Ok(id.to_string())
    } else {
        Err(failure(StatusCode::BAD_REQUEST, format!("{field} must be 1 to 128 of A-Z a-z 0-9 _ - .")))
    }
}

fn no_broadcast(id: &str) -> Reply {
    failure(StatusCode::NOT_FOUND, format!("no broadcast {id:?}"))
}

fn no_randomness() -> Reply {
    failure(StatusCode::SERVICE_UNAVAILABLE, "the system has no randomness to give")
}

fn store_failure(e: StoreError) -> Reply {
    let status = match e {
        StoreError::Exists(..) | StoreError::Unfit(_) => StatusCode::BAD_REQUEST,
        StoreError::Full(..) => StatusCode::INSUFFICIENT_STORAGE,
        StoreError::Refused(_) => StatusCode::FORBIDDEN,
        StoreError::Io(_) | StoreError::Corrupt(..) => StatusCode::INTERNAL_SERVER_ERROR,
        StoreError::Unsealable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    failure(status, e)
}
