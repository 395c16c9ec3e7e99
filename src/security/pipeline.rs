//! The pipeline itself: per-application policies compiled once from the settings, and the
//! state shared by all of them (lockout table, TOTP replay guard, audit trail).

use super::audit::{Audit, AuditEvent};
use super::hash_token::HashTokens;
use super::jwt::Hs256;
use super::lockout::Lockout;
use super::store::SecurityStore;
use super::totp::{self, ReplayError, ReplayGuard};
use super::totp_throttle::{self, TotpThrottle};
use super::webhook::{self, WebhookAnswer};
use super::{AccessRequest, Action, Decision, Grant, Reason, Step, ip_filter};
use crate::config::values::HttpUrl;
use crate::config::{AppSettings, Settings};
use crate::net::client::HttpClient;
use crate::secrets::Secret;
use ring::hmac;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// One application's settings, compiled: keys made once, not per request.
struct AppPolicy {
    settings: AppSettings,
    hash: HashTokens,
    stream_jwt: Hs256,
    totp_publish_key: Option<hmac::Key>,
    totp_play_key: Option<hmac::Key>,
    store: Arc<dyn SecurityStore>,
}

impl AppPolicy {
    fn new(settings: &AppSettings, store: Arc<dyn SecurityStore>) -> Self {
        AppPolicy {
            hash: HashTokens::new(&settings.token_hash_secret, settings.token_hash_format),
            stream_jwt: Hs256::new(&settings.jwt_stream_secret_key),
            totp_publish_key: app_totp_key(&settings.time_token_secret_for_publish),
            totp_play_key: app_totp_key(&settings.time_token_secret_for_play),
            settings: settings.clone(),
            store,
        }
    }

    fn one_time_on(&self, action: Action) -> bool {
        match action {
            Action::Publish => self.settings.publish_token_control_enabled,
            Action::Play => self.settings.play_token_control_enabled,
        }
    }

    fn hash_on(&self, action: Action) -> bool {
        match action {
            Action::Publish => self.settings.hash_control_publish_enabled,
            Action::Play => self.settings.hash_control_play_enabled,
        }
    }

    /// Whether TOTP is on for `action`, with the application's key for unregistered subscribers.
    fn totp(&self, action: Action) -> Option<Option<&hmac::Key>> {
        match action {
            Action::Publish => self.settings.enable_time_token_for_publish.then_some(self.totp_publish_key.as_ref()),
            Action::Play => self.settings.enable_time_token_for_play.then_some(self.totp_play_key.as_ref()),
        }
    }

    fn jwt_on(&self, action: Action) -> bool {
        match action {
            Action::Publish => self.settings.publish_jwt_control_enabled,
            Action::Play => self.settings.play_jwt_control_enabled,
        }
    }

    /// The checks `action` must pass, in order, by name.
    fn checks(&self, action: Action) -> Vec<&'static str> {
        let app = &self.settings;
        let flags = [
            (action == Action::Publish && !app.allowed_publisher_cidr.0.is_empty(), "allowedPublisherCIDR"),
            (action == Action::Publish && app.accept_only_streams_in_data_store, "registered stream"),
            (app.accept_only_rooms_in_data_store, "registered room"),
            (self.one_time_on(action), "one-time token"),
            (self.hash_on(action), "hash token"),
            (self.totp(action).is_some(), "TOTP"),
            (self.jwt_on(action), "stream JWT"),
            (self.webhook(action).is_some(), "webhook"),
        ];
        flags.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect()
    }

    fn webhook(&self, action: Action) -> Option<&HttpUrl> {
        match action {
            Action::Publish => self.settings.webhook_authenticate_url.as_ref(),
            Action::Play => self.settings.webhook_play_auth_url.as_ref(),
        }
    }
}

/// A TOTP step accepted by the local checks, claimed only when the whole decision allows.
#[derive(Debug)]
struct TotpClaim {
    subscriber_id: String,
    step: u64,
    period: u64,
}

/// A request whose local checks passed and that waits for the webhook's answer.
#[derive(Debug)]
pub struct WebhookPending {
    request: AccessRequest,
    grant: Grant,
    totp: Option<TotpClaim>,
    /// The webhook to ask.
    pub url: HttpUrl,
}

impl WebhookPending {
    /// The JSON body the webhook receives.
    pub fn payload(&self) -> Vec<u8> {
        let r = &self.request;
        let body = serde_json::json!({
            "streamId": r.stream_id,
            "action": r.action.as_str(),
            "clientIp": super::ip_filter::canonical(r.peer_ip).to_string(),
            "appName": r.app,
            "protocol": r.protocol.as_str(),
        });
        body.to_string().into_bytes()
    }
}

/// The security pipeline of the daemon.
pub struct Pipeline {
    apps: RwLock<Arc<HashMap<String, AppPolicy>>>,
    lockout: Mutex<Lockout>,
    replay: Mutex<ReplayGuard>,
    throttle: Mutex<TotpThrottle>,
    audit: Arc<Audit>,
}

impl Pipeline {
    /// Compiles the settings; `store_of` gives each application's datastore.
    pub fn new(settings: &Settings, store_of: impl Fn(&str) -> Arc<dyn SecurityStore>, audit: Arc<Audit>) -> Self {
        let server = &settings.server;
        Pipeline {
            apps: RwLock::new(Arc::new(compile(settings, store_of))),
            lockout: Mutex::new(Lockout::new(
                server.lockout_failures,
                server.lockout_window.0,
                server.lockout_duration.0,
            )),
            replay: Mutex::new(ReplayGuard::default()),
            throttle: Mutex::new(TotpThrottle::default()),
            audit,
        }
    }

    /// Applies changed settings: the policies are compiled again and swapped in; the lockout
    /// table, the TOTP replay guard and live sessions are kept.
    pub fn reconfigure(&self, settings: &Settings, store_of: impl Fn(&str) -> Arc<dyn SecurityStore>) {
        let server = &settings.server;
        lock(&self.lockout).set_rule(server.lockout_failures, server.lockout_window.0, server.lockout_duration.0);
        let compiled = Arc::new(compile(settings, store_of));
        *self.apps.write().unwrap_or_else(|e| e.into_inner()) = compiled;
    }

    /// The policies in force now.
    fn policies(&self) -> Arc<HashMap<String, AppPolicy>> {
        self.apps.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One line per application saying what publishing and playing require.
    pub fn describe(&self) -> Vec<String> {
        let apps = self.policies();
        let mut names: Vec<&String> = apps.keys().collect();
        names.sort();
        let say = |checks: Vec<&str>| if checks.is_empty() { "open to all".to_string() } else { checks.join(" + ") };
        names
            .into_iter()
            .filter_map(|name| apps.get(name).map(|policy| (name, policy)))
            .map(|(name, policy)| {
                format!(
                    "{name}: publish {}; play {}",
                    say(policy.checks(Action::Publish)),
                    say(policy.checks(Action::Play))
                )
            })
            .collect()
    }

    /// The audit trail decisions go to.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Runs the local checks; asks for the webhook when one is set and they all passed.
    pub fn check(&self, request: AccessRequest) -> Step {
        if lock(&self.lockout).is_locked(request.peer_ip, request.now.instant) {
            // Not counted as another refusal, so a lockout ends when its time is up.
            self.record(&request, &Decision::Deny(Reason::LockedOut));
            return Step::Decided(Decision::Deny(Reason::LockedOut));
        }
        let apps = self.policies();
        let Some(policy) = apps.get(&request.app) else {
            return Step::Decided(self.conclude(&request, Err(Reason::UnknownApp)));
        };
        match self.local_checks(policy, &request) {
            Err(reason) => Step::Decided(self.conclude(&request, Err(reason))),
            Ok((grant, totp)) => match policy.webhook(request.action) {
                Some(url) => Step::AskWebhook(Box::new(WebhookPending { url: url.clone(), request, grant, totp })),
                None => Step::Decided(self.admit(policy, &request, grant, totp)),
            },
        }
    }

    /// Finishes a request with the webhook's answer: HTTP 200 allows, anything else refuses.
    pub fn resume(&self, pending: Box<WebhookPending>, answer: WebhookAnswer) -> Decision {
        let WebhookPending { request, mut grant, totp, .. } = *pending;
        let refusal = match answer {
            WebhookAnswer::Status(200) => None,
            WebhookAnswer::Status(status) => Some(Reason::WebhookRefused(status)),
            WebhookAnswer::Failed(why) => Some(Reason::WebhookFailed(why)),
        };
        let apps = self.policies();
        match (refusal, apps.get(&request.app)) {
            (Some(reason), _) => self.conclude(&request, Err(reason)),
            (None, None) => self.conclude(&request, Err(Reason::UnknownApp)),
            (None, Some(policy)) => {
                grant.admitted_by.push("webhook");
                self.admit(policy, &request, grant, totp)
            }
        }
    }

    /// Decides `request` completely, asking the webhook through `client` when one is set.
    pub async fn decide(&self, request: AccessRequest, client: &HttpClient) -> Decision {
        match self.check(request) {
            Step::Decided(decision) => decision,
            Step::AskWebhook(pending) => {
                let answer = webhook::ask(client, &pending.url, pending.payload()).await;
                self.resume(pending, answer)
            }
        }
    }

    /// Every enabled check, in order; the first refusal wins.
    fn local_checks(&self, policy: &AppPolicy, r: &AccessRequest) -> Result<(Grant, Option<TotpClaim>), Reason> {
        let (app, store, creds, now) = (&policy.settings, &policy.store, &r.credentials, r.now.unix);
        let mut grant = Grant::default();

        if r.action == Action::Publish && !ip_filter::publisher_allowed(app, r.peer_ip) {
            return Err(Reason::PeerNotAllowed);
        }
        if r.action == Action::Publish
            && app.accept_only_streams_in_data_store
            && !store.stream_registered(&r.stream_id)
        {
            return Err(Reason::StreamNotRegistered);
        }
        if let Some(room) = r.room_id.as_deref().filter(|_| app.accept_only_rooms_in_data_store) {
            if !store.room_registered(room) {
                return Err(Reason::RoomNotRegistered);
            }
        }

        let one_time_on = policy.one_time_on(r.action);
        // With one-time tokens off, `token` may carry the hash or the JWT instead.
        let spare_token = if one_time_on { None } else { creds.token.as_ref() };
        if one_time_on {
            let token_id = creds.token.as_ref().ok_or(Reason::OneTimeTokenMissing)?;
            let token = store.one_time_token(token_id.expose()).ok_or(Reason::OneTimeTokenUnknown)?;
            if token.kind != r.action {
                return Err(Reason::OneTimeTokenWrongType);
            }
            if token.stream_id != r.stream_id {
                return Err(Reason::OneTimeTokenWrongStream);
            }
            if token.room_id.is_some() && token.room_id != r.room_id {
                return Err(Reason::OneTimeTokenWrongRoom);
            }
            if token.expire_date <= now {
                return Err(Reason::OneTimeTokenExpired);
            }
            grant.one_time_token = Some(token.token_id);
            grant.admitted_by.push("one-time token");
        }

        if policy.hash_on(r.action) {
            let hash = creds.hash.as_ref().or(spare_token).ok_or(Reason::HashMissing)?;
            let expiry = policy.hash.check(&r.stream_id, r.action, hash.expose(), creds.expire_date.as_deref(), now)?;
            grant.limit(expiry);
            grant.admitted_by.push("hash token");
        }

        let mut totp_claim = None;
        if let Some(app_key) = policy.totp(r.action) {
            let (subscriber_id, code) =
                creds.subscriber_id.as_ref().zip(creds.subscriber_code.as_ref()).ok_or(Reason::TotpMissing)?;
            let registered = store.subscriber(&r.stream_id, subscriber_id);
            let target = totp_throttle::Target {
                app: &r.app,
                stream: &r.stream_id,
                subscriber: subscriber_id,
                registered: registered.is_some(),
                action: r.action,
            };
            let (key, period) = match registered {
                Some(subscriber) => {
                    if !subscriber.kind.allows(r.action) {
                        return Err(Reason::SubscriberWrongType);
                    }
                    if subscriber.blocked(r.action, now) {
                        return Err(Reason::SubscriberBlocked);
                    }
                    (subscriber.secret.expose().clone(), subscriber.period.unwrap_or(app.time_token_period))
                }
                None => {
                    let app_key = app_key.ok_or(Reason::SubscriberUnknown)?;
                    (totp::derived_key(app_key, subscriber_id, &r.stream_id, r.action), app.time_token_period)
                }
            };
            let period = u64::from(period);
            let moment = totp_throttle::Moment { step: now / period.max(1), instant: r.now.instant };
            if lock(&self.throttle).refused(target, moment) {
                return Err(Reason::TotpThrottled);
            }
            let Some(step) = totp::check(&key, code.expose(), now, period) else {
                lock(&self.throttle).record_failure(target, moment);
                return Err(Reason::TotpWrong);
            };
            lock(&self.throttle).record_success(target);
            if lock(&self.replay).used(subscriber_id, &r.stream_id, r.action, step) {
                return Err(Reason::TotpReplayed);
            }
            grant.subscriber_id = Some(subscriber_id.clone());
            grant.admitted_by.push("TOTP");
            totp_claim = Some(TotpClaim { subscriber_id: subscriber_id.clone(), step, period });
        }

        if policy.jwt_on(r.action) {
            let jwt = creds.jwt.as_ref().or(spare_token).ok_or(Reason::JwtMissing)?;
            let expiry = policy.stream_jwt.check_stream(jwt.expose(), &r.stream_id, r.action, now)?;
            grant.limit(expiry);
            grant.admitted_by.push("stream JWT");
        }
        Ok((grant, totp_claim))
    }

    /// Commits an admission: claims the TOTP step, consumes the one-time token, then allows.
    /// Either can lose a race with a concurrent request, which then refuses this one.
    fn admit(&self, policy: &AppPolicy, r: &AccessRequest, grant: Grant, totp: Option<TotpClaim>) -> Decision {
        let mut claimed = None;
        if let Some(claim) = &totp {
            let result = lock(&self.replay).claim(
                &claim.subscriber_id,
                &r.stream_id,
                r.action,
                claim.step,
                claim.period,
                r.now.unix,
            );
            match result {
                Ok(previous) => claimed = Some((claim, previous)),
                Err(ReplayError::Used) => return self.conclude(r, Err(Reason::TotpReplayed)),
                Err(ReplayError::Full) => return self.conclude(r, Err(Reason::TotpReplayTableFull)),
            }
        }
        if let Some(token) = &grant.one_time_token {
            if !policy.store.consume_one_time_token(token.expose()) {
                if let Some((claim, previous)) = claimed {
                    lock(&self.replay).restore(&claim.subscriber_id, &r.stream_id, r.action, previous, claim.period);
                }
                return self.conclude(r, Err(Reason::OneTimeTokenUsed));
            }
        }
        self.conclude(r, Ok(grant))
    }

    /// Records the outcome (audit trail and lockout table) and turns it into a decision.
    fn conclude(&self, r: &AccessRequest, outcome: Result<Grant, Reason>) -> Decision {
        let decision = match outcome {
            Ok(grant) => {
                lock(&self.lockout).record_success(r.peer_ip);
                Decision::Allow(grant)
            }
            Err(reason) => {
                if lock(&self.lockout).record_failure(r.peer_ip, r.now.instant) {
                    log::warn!("{} locked out after repeated refusals", ip_filter::canonical(r.peer_ip));
                }
                Decision::Deny(reason)
            }
        };
        self.record(r, &decision);
        decision
    }

    fn record(&self, r: &AccessRequest, decision: &Decision) {
        let (allowed, reason) = match decision {
            Decision::Allow(grant) if grant.admitted_by.is_empty() => (true, "no check enabled".to_string()),
            Decision::Allow(grant) => (true, format!("admitted by {}", grant.admitted_by.join(", "))),
            Decision::Deny(reason) => (false, reason.to_string()),
        };
        self.audit.record(AuditEvent {
            time: r.now.unix,
            action: r.action.as_str(),
            protocol: r.protocol.as_str(),
            app: r.app.clone(),
            stream: r.stream_id.clone(),
            peer_ip: ip_filter::canonical(r.peer_ip),
            allowed,
            reason,
            count: 1,
        });
    }
}

/// Every application's policy, compiled from the settings.
fn compile(settings: &Settings, store_of: impl Fn(&str) -> Arc<dyn SecurityStore>) -> HashMap<String, AppPolicy> {
    settings.apps.iter().map(|(name, app)| (name.clone(), AppPolicy::new(app, store_of(name)))).collect()
}

fn app_totp_key(secret: &Secret<String>) -> Option<hmac::Key> {
    secret.is_set().then(|| totp::app_key(secret.expose().as_bytes()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
