//! The pipeline itself: per-application policies compiled once from the settings, and the
//! state shared by all of them (lockout table, TOTP replay guard, audit trail). Its checks use
//! no credential up: an allowed request becomes a [`CommitPlan`] (the one-time token to
//! consume, the TOTP step to claim) that the admission commits once the session has its place.

use super::audit::{Audit, AuditEvent};
use super::hash_token::HashTokens;
use super::jwt::Hs256;
use super::lockout::Lockout;
use super::store::{SecurityStore, SubscriberKey};
use super::totp::{self, ReplayError, ReplayGuard};
use super::totp_throttle::{self, TotpThrottle};
use super::webhook::WebhookAnswer;
use super::{AccessRequest, Action, Decision, Grant, Reason, Step, Verdict, ip_filter, keyed, secret_in_force};
use crate::config::values::HttpUrl;
use crate::config::{AppSettings, SecretSetting, Settings};
use crate::secrets::Secret;
use ring::hmac;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// One application's settings, compiled: keys made once, not per request.
struct AppPolicy {
    settings: AppSettings,
    hash: Result<HashTokens, Reason>,
    stream_jwt: Result<Hs256, Reason>,
    totp_publish_key: Result<Option<hmac::Key>, Reason>,
    totp_play_key: Result<Option<hmac::Key>, Reason>,
    store: Arc<dyn SecurityStore>,
}

impl AppPolicy {
    fn new(settings: &AppSettings, store: Arc<dyn SecurityStore>) -> Self {
        AppPolicy {
            hash: keyed(&settings.token_hash_secret, "tokenHashSecret", |secret| {
                HashTokens::new(secret, settings.token_hash_format)
            }),
            stream_jwt: keyed(&settings.jwt_stream_secret_key, "jwtStreamSecretKey", Hs256::new),
            totp_publish_key: app_totp_key(&settings.time_token_secret_for_publish, "timeTokenSecretForPublish"),
            totp_play_key: app_totp_key(&settings.time_token_secret_for_play, "timeTokenSecretForPlay"),
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

    /// Whether TOTP is on for `action`, with the application's key for unregistered subscribers
    /// (or why it cannot be opened).
    fn totp(&self, action: Action) -> Option<&Result<Option<hmac::Key>, Reason>> {
        match action {
            Action::Publish => self.settings.enable_time_token_for_publish.then_some(&self.totp_publish_key),
            Action::Play => self.settings.enable_time_token_for_play.then_some(&self.totp_play_key),
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

/// A TOTP step accepted by the local checks, claimed only when the admission commits.
#[derive(Debug)]
struct TotpClaim {
    subscriber_id: String,
    step: u64,
    period: u64,
}

/// What the local checks allowed, to be carried on to the webhook or the commit.
struct Allowed {
    request: AccessRequest,
    grant: Grant,
    totp: Option<TotpClaim>,
    store: Arc<dyn SecurityStore>,
}

impl std::fmt::Debug for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allowed")
            .field("request", &self.request)
            .field("grant", &self.grant)
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

/// A request whose local checks passed and that waits for the webhook's answer.
#[derive(Debug)]
pub struct WebhookPending {
    allowed: Allowed,
    /// The webhook to ask.
    pub url: HttpUrl,
}

impl WebhookPending {
    /// The JSON body the webhook receives.
    pub fn payload(&self) -> Vec<u8> {
        let r = &self.allowed.request;
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

/// An allowed request, not yet admitted: what its commit uses up. Nothing is consumed and
/// nothing is audited until [`Pipeline::commit`] or [`Pipeline::withdraw`] takes it.
#[derive(Debug)]
pub struct CommitPlan {
    allowed: Allowed,
}

impl CommitPlan {
    /// The one-time token the commit consumes, if one admitted the request.
    pub fn one_time_token(&self) -> Option<&Secret<String>> {
        self.allowed.grant.one_time_token.as_ref()
    }

    /// The TOTP subscriber and code step the commit claims, if TOTP admitted the request.
    pub fn totp_step(&self) -> Option<(&str, u64)> {
        self.allowed.totp.as_ref().map(|claim| (claim.subscriber_id.as_str(), claim.step))
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

    /// Runs the local checks; asks for the webhook when one is set and they all passed. A
    /// refusal is audited now; an allowance waits for its commit.
    pub fn check(&self, request: AccessRequest) -> Step {
        if lock(&self.lockout).is_locked(request.peer_ip, request.now.instant) {
            // Not counted as another refusal, so a lockout ends when its time is up.
            self.record(&request, Err(&Reason::LockedOut));
            return Step::Decided(Verdict::Deny(Reason::LockedOut));
        }
        let apps = self.policies();
        let Some(policy) = apps.get(&request.app) else {
            return Step::Decided(Verdict::Deny(self.refuse(&request, Reason::UnknownApp)));
        };
        match self.local_checks(policy, &request) {
            Err(reason @ (Reason::SubscriberKeyUnopenable(_) | Reason::SecretUnopenable(_))) => {
                // The box's fault, not the client's: counts for no lockout.
                self.record(&request, Err(&reason));
                Step::Decided(Verdict::Deny(reason))
            }
            Err(reason) => Step::Decided(Verdict::Deny(self.refuse(&request, reason))),
            Ok((grant, totp)) => {
                let allowed = Allowed { request, grant, totp, store: policy.store.clone() };
                match policy.webhook(allowed.request.action) {
                    Some(url) => Step::AskWebhook(Box::new(WebhookPending { url: url.clone(), allowed })),
                    None => Step::Decided(Verdict::Allow(Box::new(CommitPlan { allowed }))),
                }
            }
        }
    }

    /// Finishes the checks of a request with the webhook's answer: HTTP 200 allows, anything
    /// else refuses.
    pub fn resume(&self, pending: Box<WebhookPending>, answer: WebhookAnswer) -> Verdict {
        let WebhookPending { mut allowed, .. } = *pending;
        let refusal = match answer {
            WebhookAnswer::Status(200) => None,
            WebhookAnswer::Status(status) => Some(Reason::WebhookRefused(status)),
            WebhookAnswer::Failed(why) => Some(Reason::WebhookFailed(why)),
        };
        match refusal {
            Some(reason) => Verdict::Deny(self.refuse(&allowed.request, reason)),
            None => {
                allowed.grant.admitted_by.push("webhook");
                Verdict::Allow(Box::new(CommitPlan { allowed }))
            }
        }
    }

    /// Commits an admission whose session holds its place: claims the TOTP step, then consumes
    /// the one-time token, durably, and allows. Either can lose a race with a concurrent
    /// request, which then refuses this one (the TOTP step claimed for it is given back).
    /// Audited either way.
    pub async fn commit(&self, plan: Box<CommitPlan>) -> Decision {
        let Allowed { request: r, grant, totp, store } = plan.allowed;
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
                Err(ReplayError::Used) => return self.conclude(&r, Err(Reason::TotpReplayed)),
                Err(ReplayError::Full) => return self.conclude(&r, Err(Reason::TotpReplayTableFull)),
            }
        }
        if let Some(token) = &grant.one_time_token {
            let consumed = store.consume_one_time_token(token.expose()).await;
            if consumed != Ok(true) {
                if let Some((claim, previous)) = claimed {
                    lock(&self.replay).restore(&claim.subscriber_id, &r.stream_id, r.action, previous, claim.period);
                }
                if consumed.is_err() {
                    // The box's fault, not the client's: counts for no lockout.
                    self.record(&r, Err(&Reason::StoreUnavailable));
                    return Decision::Deny(Reason::StoreUnavailable);
                }
                return self.conclude(&r, Err(Reason::OneTimeTokenUsed));
            }
        }
        self.conclude(&r, Ok(grant))
    }

    /// Withdraws an allowed request whose session cannot start (its place could not be had,
    /// for `why`): nothing is consumed, the refusal is audited, and it counts for no lockout.
    pub fn withdraw(&self, plan: Box<CommitPlan>, why: String) -> Reason {
        let reason = Reason::NotStarted(why);
        self.record(&plan.allowed.request, Err(&reason));
        reason
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

        // A secret of this box that does not open refuses before any credential is looked at:
        // none is checked (nor its throttle touched) while the box cannot decide.
        let hash_tokens = policy.hash_on(r.action).then(|| policy.hash.as_ref().map_err(Clone::clone)).transpose()?;
        let stream_jwt =
            policy.jwt_on(r.action).then(|| policy.stream_jwt.as_ref().map_err(Clone::clone)).transpose()?;

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

        if let Some(hash_tokens) = hash_tokens {
            let hash = creds.hash.as_ref().or(spare_token).ok_or(Reason::HashMissing)?;
            let expiry = hash_tokens.check(&r.stream_id, r.action, hash.expose(), creds.expire_date.as_deref(), now)?;
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
                    let key = match subscriber.secret {
                        SubscriberKey::Open(key) => key.expose().clone(),
                        SubscriberKey::Unopenable(why) => return Err(Reason::SubscriberKeyUnopenable(why)),
                    };
                    (key, subscriber.period.unwrap_or(app.time_token_period))
                }
                None => {
                    let app_key = app_key.as_ref().map_err(Clone::clone)?;
                    let app_key = app_key.as_ref().ok_or(Reason::SubscriberUnknown)?;
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

        if let Some(stream_jwt) = stream_jwt {
            let jwt = creds.jwt.as_ref().or(spare_token).ok_or(Reason::JwtMissing)?;
            let expiry = stream_jwt.check_stream(jwt.expose(), &r.stream_id, r.action, now)?;
            grant.limit(expiry);
            grant.admitted_by.push("stream JWT");
        }
        Ok((grant, totp_claim))
    }

    /// Records a refusal (audit trail and lockout table); returns its reason.
    fn refuse(&self, r: &AccessRequest, reason: Reason) -> Reason {
        if lock(&self.lockout).record_failure(r.peer_ip, r.now.instant) {
            log::warn!("{} locked out after repeated refusals", ip_filter::canonical(r.peer_ip));
        }
        self.record(r, Err(&reason));
        reason
    }

    /// Records the outcome of a commit (audit trail and lockout table) as a decision.
    fn conclude(&self, r: &AccessRequest, outcome: Result<Grant, Reason>) -> Decision {
        match outcome {
            Ok(grant) => {
                lock(&self.lockout).record_success(r.peer_ip);
                self.record(r, Ok(&grant));
                Decision::Allow(grant)
            }
            Err(reason) => Decision::Deny(self.refuse(r, reason)),
        }
    }

    fn record(&self, r: &AccessRequest, outcome: Result<&Grant, &Reason>) {
        let (allowed, reason) = match outcome {
            Ok(grant) if grant.admitted_by.is_empty() => (true, "no check enabled".to_string()),
            Ok(grant) => (true, format!("admitted by {}", grant.admitted_by.join(", "))),
            Err(reason) => (false, reason.to_string()),
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

/// The application's TOTP key for unregistered subscribers, from the secret setting `key`.
fn app_totp_key(setting: &SecretSetting, key: &'static str) -> Result<Option<hmac::Key>, Reason> {
    Ok(secret_in_force(setting, key)?.map(|secret| totp::app_key(secret.expose().as_bytes())))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    //! The pipeline's checks and commits, without a runtime: the store's futures are ready at
    //! once, and each is polled once.

    use super::*;
    use crate::config::values::SettingValue;
    use crate::security::store::{OneTimeToken, Subscriber};
    use crate::security::{Credentials, Now, Protocol, Verdict};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    const T0: u64 = 1_800_000_000;

    /// One-time tokens in memory; `lose` makes every consume lose its race.
    #[derive(Default)]
    struct Tokens {
        tokens: Mutex<HashMap<String, OneTimeToken>>,
        lose: bool,
        broken: bool,
    }

    impl Tokens {
        fn with(ids: &[&str], lose: bool) -> Arc<Self> {
            let token = |id: &str| OneTimeToken {
                token_id: Secret::new(id.to_string()),
                stream_id: "s1".into(),
                kind: Action::Publish,
                expire_date: T0 + 3600,
                room_id: None,
            };
            let tokens = ids.iter().map(|id| (id.to_string(), token(id))).collect();
            Arc::new(Tokens { tokens: Mutex::new(tokens), lose, broken: false })
        }

        fn has(&self, id: &str) -> bool {
            lock(&self.tokens).contains_key(id)
        }
    }

    impl SecurityStore for Tokens {
        fn stream_registered(&self, _: &str) -> bool {
            false
        }
        fn room_registered(&self, _: &str) -> bool {
            false
        }
        fn one_time_token(&self, token_id: &str) -> Option<OneTimeToken> {
            lock(&self.tokens).get(token_id).cloned()
        }
        fn consume_one_time_token(&self, token_id: &str) -> crate::security::store::Consuming<'_> {
            if self.broken {
                return Box::pin(std::future::ready(Err("no space left on device".into())));
            }
            let consumed = !self.lose && lock(&self.tokens).remove(token_id).is_some();
            Box::pin(std::future::ready(Ok(consumed)))
        }
        fn subscriber(&self, _: &str, _: &str) -> Option<Subscriber> {
            None
        }
    }

    /// A pipeline for LiveApp with one-time tokens and (unregistered) TOTP on for publishing.
    fn pipeline(store: Arc<Tokens>) -> Pipeline {
        let mut settings = crate::config::load(None).expect("defaults").settings;
        let app = settings.apps.get_mut(crate::config::DEFAULT_APP).expect("LiveApp");
        app.publish_token_control_enabled = true;
        app.enable_time_token_for_publish = true;
        app.time_token_secret_for_publish = SecretSetting::clear("totp-secret");
        let store: Arc<dyn SecurityStore> = store;
        Pipeline::new(&settings, |_| store.clone(), Arc::new(Audit::in_memory()))
    }

    fn request(token: &str, subscriber: &str) -> AccessRequest {
        let key = totp::derived_key(&totp::app_key(b"totp-secret"), subscriber, "s1", Action::Publish);
        let code = totp::code_at(&key, T0, 60);
        AccessRequest {
            action: Action::Publish,
            protocol: Protocol::Rtmp,
            app: "LiveApp".into(),
            stream_id: "s1".into(),
            room_id: None,
            peer_ip: "10.0.0.1".parse().expect("ip"),
            credentials: Credentials::from_query(&format!(
                "token={token}&subscriberId={subscriber}&subscriberCode={code}"
            )),
            now: Now { unix: T0, instant: Instant::now() },
        }
    }

    fn plan(pipeline: &Pipeline, request: AccessRequest) -> Box<CommitPlan> {
        match pipeline.check(request) {
            Step::Decided(Verdict::Allow(plan)) => plan,
            other => panic!("not allowed: {other:?}"),
        }
    }

    fn commit(pipeline: &Pipeline, plan: Box<CommitPlan>) -> Decision {
        match std::pin::pin!(pipeline.commit(plan)).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(decision) => decision,
            Poll::Pending => panic!("the commit waited on a ready store"),
        }
    }

    fn audited(pipeline: &Pipeline) -> Vec<(bool, String)> {
        pipeline.audit().recent().into_iter().map(|e| (e.allowed, e.reason)).collect()
    }

    #[test]
    fn checks_use_no_credential_and_the_commit_consumes_them() {
        let store = Tokens::with(&["t1"], false);
        let pipeline = pipeline(store.clone());
        let plan = plan(&pipeline, request("t1", "cam"));
        assert_eq!(plan.one_time_token().map(|t| t.expose().as_str()), Some("t1"));
        assert_eq!(plan.totp_step(), Some(("cam", T0 / 60)));
        assert!(store.has("t1"), "the check consumed the token");
        assert!(audited(&pipeline).is_empty(), "audited before the commit");

        let Decision::Allow(grant) = commit(&pipeline, plan) else { panic!("commit refused") };
        assert_eq!(grant.admitted_by, vec!["one-time token", "TOTP"]);
        assert!(!store.has("t1"));
        assert_eq!(audited(&pipeline), vec![(true, "admitted by one-time token, TOTP".to_string())]);
        assert!(matches!(
            pipeline.check(request("t1", "cam")),
            Step::Decided(Verdict::Deny(Reason::OneTimeTokenUnknown))
        ));
    }

    #[test]
    fn a_withdrawn_allowance_leaves_its_token_and_totp_step_and_is_audited() {
        let store = Tokens::with(&["t1"], false);
        let pipeline = pipeline(store.clone());
        let withdrawn = pipeline.withdraw(plan(&pipeline, request("t1", "cam")), "stream is not live".into());
        assert_eq!(withdrawn, Reason::NotStarted("stream is not live".into()));
        assert!(store.has("t1"));
        assert_eq!(audited(&pipeline), vec![(false, "not started: stream is not live".to_string())]);

        let again = plan(&pipeline, request("t1", "cam"));
        assert!(matches!(commit(&pipeline, again), Decision::Allow(_)), "the same token and code work");
    }

    #[test]
    fn a_commit_that_loses_its_token_gives_its_totp_step_back() {
        let store = Tokens::with(&["t1", "t2"], false);
        let pipeline = pipeline(store.clone());
        let (first, second) = (plan(&pipeline, request("t1", "a")), plan(&pipeline, request("t1", "b")));
        assert!(matches!(commit(&pipeline, first), Decision::Allow(_)));
        assert_eq!(commit(&pipeline, second), Decision::Deny(Reason::OneTimeTokenUsed));
        let b_again = plan(&pipeline, request("t2", "b"));
        assert!(matches!(commit(&pipeline, b_again), Decision::Allow(_)), "b's TOTP step was given back");

        let losing = Tokens::with(&["t1"], true);
        let pipeline = self::pipeline(losing.clone());
        assert_eq!(commit(&pipeline, plan(&pipeline, request("t1", "a"))), Decision::Deny(Reason::OneTimeTokenUsed));
        let Step::Decided(Verdict::Allow(_)) = pipeline.check(request("t1", "a")) else {
            panic!("the TOTP step of a lost commit stays claimed")
        };
        assert_eq!(
            audited(&pipeline),
            vec![(false, "one-time token already used".to_string())],
            "a lost commit is audited with its reason"
        );
    }

    #[test]
    fn a_consume_the_store_cannot_make_durable_refuses_and_uses_nothing() {
        let tokens = Tokens::with(&["t1"], false);
        let broken = Arc::new(Tokens { tokens: Mutex::new(lock(&tokens.tokens).clone()), lose: false, broken: true });
        let pipeline = pipeline(broken.clone());
        assert_eq!(commit(&pipeline, plan(&pipeline, request("t1", "a"))), Decision::Deny(Reason::StoreUnavailable));
        assert!(broken.has("t1"), "the token is left unused");
        let Step::Decided(Verdict::Allow(_)) = pipeline.check(request("t1", "a")) else {
            panic!("the TOTP step of a commit that could not be kept was not given back")
        };
        assert_eq!(
            audited(&pipeline),
            vec![(false, "one-time token not consumed: the datastore cannot be written".to_string())]
        );
    }

    #[test]
    fn a_secret_that_does_not_open_refuses_with_its_name_and_locks_no_one_out() {
        let keyring = crate::secrets::Keyring::ephemeral();
        let moved = keyring.seal("elsewhere", b"totp-secret").unwrap();
        let mut settings = crate::config::load(None).expect("defaults").settings;
        settings.server.lockout_failures = 1;
        let app = settings.apps.get_mut(crate::config::DEFAULT_APP).expect("LiveApp");
        app.enable_time_token_for_publish = true;
        app.time_token_secret_for_publish = SecretSetting::parse(&moved).unwrap();
        app.jwt_stream_secret_key = SecretSetting::parse(&moved).unwrap();
        settings.open_secrets(&keyring);
        let store: Arc<dyn SecurityStore> = Tokens::with(&[], false);
        let pipeline = Pipeline::new(&settings, |_| store.clone(), Arc::new(Audit::in_memory()));
        for _ in 0..3 {
            let Step::Decided(Verdict::Deny(reason)) = pipeline.check(request("", "cam1")) else {
                panic!("an unopenable TOTP key must refuse");
            };
            assert_eq!(reason, Reason::SecretUnopenable("timeTokenSecretForPublish"));
            assert_eq!(reason.to_string(), "timeTokenSecretForPublish cannot be opened");
        }

        let app = settings.apps.get_mut(crate::config::DEFAULT_APP).expect("LiveApp");
        // With the stream JWT on too, its key refuses first: no credential is checked at all.
        app.publish_jwt_control_enabled = true;
        pipeline.reconfigure(&settings, |_| store.clone());
        let mut jwt = request("", "cam1");
        jwt.credentials = Credentials::from_query("jwt=a.b.c");
        let Step::Decided(Verdict::Deny(reason)) = pipeline.check(jwt) else { panic!("must refuse") };
        assert_eq!(reason, Reason::SecretUnopenable("jwtStreamSecretKey"), "not locked out: the box's fault");
    }
}
