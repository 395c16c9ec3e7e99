//! A security pipeline over a real configuration directory, a memory store and a manual clock.

use super::ConfigDir;
use jsonwebtoken::{EncodingKey, Header};
use rampart::clock::ManualClock;
use rampart::config::{self, AppSettings};
use rampart::secrets::Secret;
use rampart::security::audit::Audit;
use rampart::security::hash_token::HashTokens;
use rampart::security::store::{OneTimeToken, SecurityStore};
use rampart::security::{AccessRequest, Action, Credentials, Decision, Now, Pipeline, Protocol, Step, Verdict, totp};
use rampart::storage::Storage;
use rampart::storage::audit_file::{AuditFiles, Rotation};
use rampart::storage::fs::RealFs;
use rampart::store::Datastore;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The time every fixture starts at.
pub const T0: u64 = 1_800_000_000;
/// A stream JWT key of the required length.
pub const STREAM_KEY: &str = "stream-secret-0123456789abcdef0123";

pub struct Fixture {
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<Datastore>,
    pub clock: ManualClock,
    pub app: AppSettings,
    pub _dir: ConfigDir,
}

impl Fixture {
    /// A pipeline for `LiveApp` with these application and server settings.
    pub fn new(app: &str, server: &str) -> Self {
        let dir = ConfigDir::new().server(server).app("LiveApp", app);
        let settings = config::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}")).settings;
        let store = Arc::new(Datastore::in_memory());
        let shared: Arc<dyn SecurityStore> = store.clone();
        let storage = Storage::start(Arc::new(RealFs)).expect("storage worker");
        let rotation = Rotation { max_bytes: 1 << 20, keep: 1 };
        let files = super::block_on(AuditFiles::open(&storage, dir.path(), rotation)).expect("audit files");
        let pipeline =
            Arc::new(Pipeline::new(&settings, |_| shared.clone(), Arc::new(Audit::with_sink(Arc::new(files)))));
        let app = settings.apps["LiveApp"].clone();
        Fixture { pipeline, store, clock: ManualClock::at_unix(T0), app, _dir: dir }
    }

    /// The audit log file's content.
    pub fn audit_file(&self) -> String {
        self.pipeline.audit().sync();
        std::fs::read_to_string(self._dir.file("audit.log")).unwrap_or_default()
    }

    pub fn now(&self) -> u64 {
        rampart::clock::Clock::unix_secs(&self.clock)
    }

    /// A request from `peer` for `stream` with this URL query.
    pub fn request(&self, action: Action, stream: &str, query: &str, peer: &str) -> AccessRequest {
        AccessRequest {
            action,
            protocol: Protocol::Rtmp,
            app: "LiveApp".into(),
            stream_id: stream.into(),
            room_id: None,
            peer_ip: peer.parse().unwrap(),
            credentials: Credentials::from_query(query),
            now: Now::from_clock(&self.clock),
        }
    }

    /// Decides a request that needs no webhook, and commits it when allowed.
    pub fn decide(&self, request: AccessRequest) -> Decision {
        match self.pipeline.check(request) {
            Step::Decided(verdict) => self.commit(verdict),
            Step::AskWebhook(pending) => panic!("unexpected webhook {}", pending.url),
        }
    }

    /// Commits `verdict` when it allows, as an admission whose session has its place does.
    pub fn commit(&self, verdict: Verdict) -> Decision {
        match verdict {
            Verdict::Allow(plan) => finish(self.pipeline.commit(plan)),
            Verdict::Deny(reason) => Decision::Deny(reason),
        }
    }

    pub fn decide_query(&self, action: Action, stream: &str, query: &str) -> Decision {
        self.decide(self.request(action, stream, query, "10.0.0.1"))
    }

    /// Makes a one-time token and returns its id.
    pub fn one_time(&self, id: &str, stream: &str, kind: Action, expire_date: u64) -> String {
        let token = OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: stream.into(),
            kind,
            expire_date,
            room_id: None,
        };
        super::block_on(self.store.add_token(token, self.now())).unwrap();
        id.to_string()
    }

    /// The hash token for `stream` and `action`, URL-escaped.
    pub fn hash(&self, stream: &str, action: Action, expire_date: u64) -> String {
        let hash = HashTokens::new(
            self.app.token_hash_secret.opened().expect("tokenHashSecret in force"),
            self.app.token_hash_format,
        )
        .make(stream, action, expire_date);
        hash.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    }

    /// The current TOTP code of an unregistered subscriber.
    pub fn totp_code(&self, subscriber: &str, stream: &str, action: Action) -> String {
        let secret = match action {
            Action::Publish => &self.app.time_token_secret_for_publish,
            Action::Play => &self.app.time_token_secret_for_play,
        };
        let secret = secret.opened().expect("TOTP secret in force");
        let key = totp::derived_key(&totp::app_key(secret.expose().as_bytes()), subscriber, stream, action);
        totp::code_at(&key, self.now(), u64::from(self.app.time_token_period))
    }
}

/// An HS256 JWT with these claims.
pub fn jwt(key: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

/// A stream JWT for `stream` and `action` that expires at `exp`.
pub fn stream_jwt(stream: &str, action: Action, exp: u64) -> String {
    jwt(STREAM_KEY, serde_json::json!({"streamId": stream, "type": action.as_str(), "exp": exp}))
}

/// The TOTP code an unregistered `subscriber` has now for `stream` and `action`, under the
/// application secret `secret` and a step of `period` seconds.
pub fn totp_code_now(secret: &str, subscriber: &str, stream: &str, action: Action, period: u64) -> String {
    let key = totp::derived_key(&totp::app_key(secret.as_bytes()), subscriber, stream, action);
    totp::code_at(&key, rampart::clock::Clock::unix_secs(&rampart::clock::SystemClock), period)
}

/// Runs `future` to its end on this thread, without a runtime (a commit over a memory store
/// completes at once); fails the test if it takes more than ten seconds.
pub fn finish<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        assert!(Instant::now() < deadline, "the future did not finish");
        std::thread::yield_now();
    }
}
