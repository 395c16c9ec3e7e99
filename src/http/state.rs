//! What the HTTP handlers reach of the daemon. `app.rs` builds it from its services, so that
//! `http/` depends on the parts it uses, never on the wiring that starts them.

use crate::admission::Admission;
use crate::clock::Clock;
use crate::config::live::LiveSettings;
use crate::media::Hub;
use crate::secrets::keyring;
use crate::secrets::{Keyring, Unopenable};
use crate::security::Pipeline;
use crate::security::jwks::KeySource;
use crate::security::sessions::Sessions;
use crate::store::Datastore;
use crate::store::admin::AdminAccount;
use crate::webrtc::WebRtc;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The daemon's parts the handlers use.
pub struct State {
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// Where the API JWT checks fetch their JWKS.
    pub keys: Arc<dyn KeySource>,
    /// The panel's admin account.
    pub admin: Arc<AdminAccount>,
    /// When the daemon started.
    pub started: Instant,
    /// Decides every publish and play (and keeps the audit trail).
    pub pipeline: Arc<Pipeline>,
    /// Drives a WHIP or WHEP offer's decision: reserve, commit, start.
    pub admission: Arc<Admission>,
    /// The live streams.
    pub hub: Arc<Hub>,
    /// Live sessions, for revocation.
    pub sessions: Arc<Sessions>,
    /// WebRTC sessions (WHEP playback, WHIP ingest).
    pub webrtc: Arc<WebRtc>,
    /// Each application's datastore.
    pub stores: HashMap<String, Arc<Datastore>>,
    /// Where each listener listens, by protocol name (`RTMP`, `RTMPS`, `HTTP`, `HTTPS`).
    pub addresses: Vec<(&'static str, SocketAddr)>,
    /// The settings in force, and their changes.
    pub settings: Arc<LiveSettings>,
    /// The box's data keys.
    pub keyring: Arc<Keyring>,
    /// The TLS key that did not open at start.
    pub tls_key: Option<Unopenable>,
}

impl State {
    /// Every secret kept on disk that does not open, for the system status: the data keys that
    /// did not, the TLS key, the secret settings and the datastores' secrets.
    pub fn unopenable(&self) -> Vec<Unopenable> {
        let place = format!("data.dir/{}", keyring::DIR);
        let data_key = |why: &String| Unopenable { place: place.clone(), key: "a data key".into(), why: why.clone() };
        let mut list: Vec<Unopenable> = self.keyring.status().problems.iter().map(data_key).collect();
        list.extend(self.tls_key.clone());
        list.extend(self.settings.now().unopenable());
        list.extend(self.stores.values().flat_map(|store| store.unopenable()));
        list
    }
}
