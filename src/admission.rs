//! Admission: how every protocol turns a publish or play into a session. The pipeline's checks
//! run first (asking the webhook through its port when one is set); an allowed request then
//! RESERVES what its session needs (the hub's publisher slot, a live stream to read, a WebRTC
//! session with its port and answer), and only then COMMITS: the TOTP step is claimed and the
//! one-time token consumed, durably. A session that cannot start (in use, not live, no port,
//! an offer that cannot be answered) is refused with its place released and its credentials
//! unused; a commit that loses a race releases the place too. Both are audited with the reason.

use crate::security::webhook::Webhook;
use crate::security::{AccessRequest, CommitPlan, Decision, Grant, Pipeline, Reason, Step, Verdict};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

/// What a caller holds for a session between its decision and its start.
pub trait Reserved: Send {
    /// Gives the place back: the session will not start.
    fn release(self) -> impl Future<Output = ()> + Send;
}

/// A hub publisher slot is released by dropping it.
impl Reserved for crate::media::Publisher {
    async fn release(self) {}
}

/// A hub reader is released by dropping it.
impl Reserved for crate::media::Reader {
    async fn release(self) {}
}

/// Why a request did not become a session.
#[derive(Debug, thiserror::Error)]
pub enum Refused<E> {
    /// The pipeline refused it (or its commit lost a race): answer with a generic refusal.
    #[error("refused: {0}")]
    Denied(Reason),
    /// Allowed, but its session could not be reserved, for this reason of the caller's.
    #[error("not started: {0}")]
    Unavailable(E),
}

/// Why a request whose place was being reserved did not start when its caller dropped it.
const ABANDONED: &str = "abandoned while its session was being prepared";

/// A plan waiting for its place: withdrawn (and so audited) if dropped before it is had.
struct Waiting<'a> {
    pipeline: &'a Pipeline,
    plan: Option<Box<CommitPlan>>,
}

impl Waiting<'_> {
    /// The plan, no longer withdrawn on drop.
    fn into_plan(mut self) -> Option<Box<CommitPlan>> {
        self.plan.take()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(plan) = self.plan.take() {
            self.pipeline.withdraw(plan, ABANDONED.to_string());
        }
    }
}

/// Drives the security pipeline for every protocol.
pub struct Admission {
    pipeline: Arc<Pipeline>,
    webhook: Arc<dyn Webhook>,
}

impl Admission {
    /// Admissions decided by `pipeline`, asking webhooks through `webhook`.
    pub fn new(pipeline: Arc<Pipeline>, webhook: Arc<dyn Webhook>) -> Self {
        Admission { pipeline, webhook }
    }

    /// The pipeline that decides.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Runs the checks of `request`, asking the webhook when the pipeline wants it. Nothing is
    /// consumed: an allowance is a plan for [`Pipeline::commit`].
    pub async fn decide(&self, request: AccessRequest) -> Verdict {
        match self.pipeline.check(request) {
            Step::Decided(verdict) => verdict,
            Step::AskWebhook(pending) => {
                let answer = self.webhook.ask(&pending.url, pending.payload()).await;
                self.pipeline.resume(pending, answer)
            }
        }
    }

    /// Decides `request`; if allowed, awaits `reserve` (polled only then), and commits once it
    /// holds the session's place. Returns the place and the grant to start the session with.
    pub async fn admit<H: Reserved, E: Display>(
        &self,
        request: AccessRequest,
        reserve: impl Future<Output = Result<H, E>>,
    ) -> Result<(H, Grant), Refused<E>> {
        let plan = match self.decide(request).await {
            Verdict::Allow(plan) => plan,
            Verdict::Deny(reason) => return Err(Refused::Denied(reason)),
        };
        // Until the place is had, dropping this (the client went away) withdraws the plan.
        let waiting = Waiting { pipeline: &self.pipeline, plan: Some(plan) };
        let reserved = reserve.await;
        let Some(plan) = waiting.into_plan() else { return Err(Refused::Denied(Reason::NotStarted(ABANDONED.into()))) };
        let held = match reserved {
            Ok(held) => held,
            Err(why) => {
                self.pipeline.withdraw(plan, why.to_string());
                return Err(Refused::Unavailable(why));
            }
        };
        // The commit runs to its end even if this is dropped meanwhile (the client went away):
        // a consume under way becomes durable regardless, and so its TOTP claim and audit
        // event are kept whole with it.
        let pipeline = self.pipeline.clone();
        let committed = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(async move { pipeline.commit(plan).await }).await,
            Err(_) => Ok(pipeline.commit(plan).await),
        };
        let decision = committed.unwrap_or(Decision::Deny(Reason::NotStarted(ABANDONED.into())));
        match decision {
            Decision::Allow(grant) => Ok((held, grant)),
            Decision::Deny(reason) => {
                held.release().await;
                Err(Refused::Denied(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use crate::security::audit::Audit;
    use crate::security::store::{OneTimeToken, SecurityStore};
    use crate::security::webhook::{Asking, WebhookAnswer};
    use crate::security::{Action, Credentials, Now, Protocol};
    use crate::store::Datastore;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    const T0: u64 = 1_800_000_000;

    /// A webhook no test here sets.
    struct NoWebhook;

    impl Webhook for NoWebhook {
        fn ask<'a>(&'a self, _: &'a crate::config::values::HttpUrl, _: Vec<u8>) -> Asking<'a> {
            Box::pin(std::future::ready(WebhookAnswer::Failed("not set".into())))
        }
    }

    /// A place that says when it is given back.
    struct Place(Arc<AtomicBool>);

    impl Reserved for Place {
        async fn release(self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// An admission of LiveApp publishes by one-time token, over a memory datastore holding `t1`.
    fn admission() -> (Admission, Arc<Datastore>) {
        let mut settings = crate::config::load(None).expect("defaults").settings;
        let app = settings.apps.get_mut(crate::config::DEFAULT_APP).expect("LiveApp");
        app.publish_token_control_enabled = true;
        let store = Arc::new(Datastore::in_memory());
        let token = OneTimeToken {
            token_id: Secret::new("t1".into()),
            stream_id: "s1".into(),
            kind: Action::Publish,
            expire_date: T0 + 3600,
            room_id: None,
        };
        at_once(store.add_token(token, T0)).expect("room for a token");
        let shared: Arc<dyn SecurityStore> = store.clone();
        let pipeline = Arc::new(Pipeline::new(&settings, |_| shared.clone(), Arc::new(Audit::in_memory())));
        (Admission::new(pipeline, Arc::new(NoWebhook)), store)
    }

    fn request() -> AccessRequest {
        AccessRequest {
            action: Action::Publish,
            protocol: Protocol::Rtmp,
            app: "LiveApp".into(),
            stream_id: "s1".into(),
            room_id: None,
            peer_ip: "10.0.0.1".parse().expect("ip"),
            credentials: Credentials::from_query("token=t1"),
            now: Now { unix: T0, instant: Instant::now() },
        }
    }

    /// The output of `future`, which here never waits.
    fn at_once<F: Future>(future: F) -> F::Output {
        match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("waited"),
        }
    }

    fn reasons(admission: &Admission) -> Vec<String> {
        admission.pipeline().audit().recent().into_iter().map(|e| e.reason).collect()
    }

    #[test]
    fn a_session_that_cannot_be_reserved_leaves_the_token_unused() {
        let (admission, store) = admission();
        let refused = at_once(admission.admit(request(), std::future::ready(Err::<Place, _>("stream is not live"))));
        assert!(matches!(refused, Err(Refused::Unavailable("stream is not live"))));
        assert!(store.one_time_token("t1").is_some(), "the token was consumed");
        assert_eq!(reasons(&admission), ["not started: stream is not live"]);

        let released = Arc::new(AtomicBool::new(false));
        let place = std::future::ready(Ok::<_, &str>(Place(released.clone())));
        let (_, grant) = at_once(admission.admit(request(), place)).expect("admitted");
        assert_eq!(grant.admitted_by, ["one-time token"]);
        assert!(store.one_time_token("t1").is_none(), "consumed once the place is held");
        assert!(!released.load(Ordering::SeqCst));
    }

    #[test]
    fn a_request_dropped_while_its_place_is_reserved_is_audited_and_uses_nothing() {
        let (admission, store) = admission();
        let mut admit = Box::pin(admission.admit(request(), std::future::pending::<Result<Place, &str>>()));
        assert!(admit.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        drop(admit);
        assert!(store.one_time_token("t1").is_some());
        assert_eq!(reasons(&admission), [format!("not started: {ABANDONED}")]);
    }

    #[test]
    fn a_commit_that_loses_its_token_releases_the_place() {
        let (admission, store) = admission();
        let released = Arc::new(AtomicBool::new(false));
        // Another request consumes the token while this one reserves its place.
        let place = async {
            assert!(store.consume_one_time_token_durably("t1").await.unwrap_or(false));
            Ok::<_, &str>(Place(released.clone()))
        };
        let lost = at_once(admission.admit(request(), place));
        assert!(matches!(lost, Err(Refused::Denied(Reason::OneTimeTokenUsed))));
        assert!(released.load(Ordering::SeqCst), "the place was kept");
        assert_eq!(reasons(&admission), ["one-time token already used"]);
    }
}
