//! Time of one security decision per mechanism (webhook excluded): `cargo bench --bench decision`.
//! Each mechanism is timed over fresh batches of distinct valid requests (one-time tokens and
//! TOTP codes work once), checked and committed (the token consumed, the TOTP step claimed) as
//! an admission does, and the median batch is reported in nanoseconds per decision.

use jsonwebtoken::{EncodingKey, Header};
use rampart::clock::ManualClock;
use rampart::config::SecretSetting;
use rampart::config::values::{CidrList, SettingValue};
use rampart::config::{self, AppSettings, Settings};
use rampart::secrets::Secret;
use rampart::security::audit::Audit;
use rampart::security::hash_token::HashTokens;
use rampart::security::store::{OneTimeToken, SecurityStore};
use rampart::security::{AccessRequest, Action, Credentials, Decision, Now, Pipeline, Protocol, Step, Verdict, totp};
use rampart::store::Datastore;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

const T0: u64 = 1_800_000_000;
const BATCH: usize = 4000;
const BATCHES: usize = 9;
const STREAM_KEY: &str = "stream-secret-0123456789abcdef0123";

struct Bench {
    pipeline: Pipeline,
    requests: Vec<AccessRequest>,
}

fn settings(configure: &dyn Fn(&mut AppSettings)) -> Settings {
    let mut settings = config::load(None).expect("defaults").settings;
    settings.server.lockout_failures = 0;
    configure(settings.apps.get_mut(config::DEFAULT_APP).expect("LiveApp"));
    settings
}

fn request(clock: &ManualClock, query: &str, i: usize) -> AccessRequest {
    AccessRequest {
        action: Action::Publish,
        protocol: Protocol::Rtmp,
        app: config::DEFAULT_APP.into(),
        stream_id: "s1".into(),
        room_id: None,
        peer_ip: format!("203.0.113.{}", i % 250 + 1).parse().expect("ip"),
        credentials: Credentials::from_query(query),
        now: Now::from_clock(clock),
    }
}

/// A pipeline for `configure`d settings and a batch of valid requests made by `query`.
fn bench(configure: &dyn Fn(&mut AppSettings), query: &dyn Fn(&AppSettings, &Datastore, usize) -> String) -> Bench {
    let settings = settings(configure);
    let app = settings.apps[config::DEFAULT_APP].clone();
    let store = Arc::new(Datastore::in_memory());
    let shared: Arc<dyn SecurityStore> = store.clone();
    let pipeline = Pipeline::new(&settings, |_| shared.clone(), Arc::new(Audit::in_memory()));
    let clock = ManualClock::at_unix(T0);
    let requests = (0..BATCH).map(|i| request(&clock, &query(&app, &store, i), i)).collect();
    Bench { pipeline, requests }
}

fn secret(text: &str) -> Secret<String> {
    Secret::new(text.to_string())
}

fn time(name: &str, make: &dyn Fn() -> Bench) {
    let mut per_decision: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let Bench { pipeline, requests } = make();
            let start = Instant::now();
            for request in requests {
                match pipeline.check(request) {
                    Step::Decided(Verdict::Allow(plan)) => match at_once(pipeline.commit(plan)) {
                        Decision::Allow(_) => {}
                        other => panic!("{name}: not committed: {other:?}"),
                    },
                    other => panic!("{name}: not admitted: {other:?}"),
                }
            }
            start.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .collect();
    per_decision.sort_by(f64::total_cmp);
    println!("{name:<28} {:>8.0} ns per decision", per_decision[BATCHES / 2]);
}

/// The output of `future`, which over a memory store is ready at the first poll.
fn at_once<F: Future>(future: F) -> F::Output {
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the commit waited"),
    }
}

fn main() {
    let exp = T0 + 3600;
    time("open (nothing enabled)", &|| bench(&|_| {}, &|_, _, _| String::new()));
    time("publisher CIDR", &|| {
        bench(
            &|app| app.allowed_publisher_cidr = CidrList::parse("10.0.0.0/8,203.0.113.0/24").expect("cidr"),
            &|_, _, _| String::new(),
        )
    });
    time("hash token", &|| {
        bench(
            &|app| {
                app.hash_control_publish_enabled = true;
                app.token_hash_secret = SecretSetting::clear("hash-secret");
            },
            &|app, _, _| {
                let hash = HashTokens::new(app.token_hash_secret.opened().unwrap(), app.token_hash_format).make(
                    "s1",
                    Action::Publish,
                    exp,
                );
                format!("hash={}&expireDate={exp}", hash.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"))
            },
        )
    });
    time("one-time token", &|| {
        bench(&|app| app.publish_token_control_enabled = true, &|_, store, i| {
            let id = format!("token-{i:08}-abcdefghijklmnop");
            let token = OneTimeToken {
                token_id: secret(&id),
                stream_id: "s1".into(),
                kind: Action::Publish,
                expire_date: exp,
                room_id: None,
            };
            block_on(store.add_token(token, T0)).expect("room for tokens");
            format!("token={id}")
        })
    });
    time("TOTP (unregistered)", &|| {
        bench(
            &|app| {
                app.enable_time_token_for_publish = true;
                app.time_token_secret_for_publish = SecretSetting::clear("totp-secret");
            },
            &|app, _, i| {
                let subscriber = format!("cam{i}");
                let key = totp::derived_key(&totp::app_key(b"totp-secret"), &subscriber, "s1", Action::Publish);
                format!(
                    "subscriberId={subscriber}&subscriberCode={}",
                    totp::code_at(&key, T0, u64::from(app.time_token_period))
                )
            },
        )
    });
    time("stream JWT", &|| {
        bench(
            &|app| {
                app.publish_jwt_control_enabled = true;
                app.jwt_stream_secret_key = SecretSetting::clear(STREAM_KEY);
            },
            &|_, _, _| {
                let claims = serde_json::json!({"streamId": "s1", "type": "publish", "exp": exp});
                let jwt =
                    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(STREAM_KEY.as_bytes()))
                        .expect("jwt");
                format!("jwt={jwt}")
            },
        )
    });
}

/// Runs a datastore change to its end (setup, not timed).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future)
}
