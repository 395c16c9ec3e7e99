//! Wiring: binds the listeners the settings ask for, runs the services, and stops them on
//! shutdown.

use crate::admission::Admission;
use crate::change_checks;
use crate::clock::{Clock, SystemClock};
use crate::config::changes::ConfigFiles;
use crate::config::live::{LiveSettings, Watcher};
use crate::config::values::Port;
use crate::config::{ServerSettings, Settings};
use crate::http::server::{self as http_server, Http};
use crate::http::state::State;
use crate::media::{Hub, HubLimits};
use crate::net::client::{HttpClient, TrustError};
use crate::net::jwks::HttpKeySource;
use crate::net::webhook::HttpWebhook;
use crate::net_limits::{SlotLimits, Slots};
use crate::rtmp;
use crate::rtmp::chunks::{GuardLimits, UnadmittedBudget};
use crate::secrets::keyring::{self, Mint};
use crate::secrets::{self, Keyring, Unopenable};
use crate::security::Pipeline;
use crate::security::audit::Audit;
use crate::security::sessions::Sessions;
use crate::security::store::SecurityStore;
use crate::storage::audit_file::{AuditFiles, Rotation};
use crate::storage::fs::{Fs, RealFs};
use crate::storage::writer::WriteError;
use crate::storage::{Storage, StorageError};
use crate::store::admin::{AdminAccount, SETUP_FILE};
use crate::store::{Datastore, StoreError};
use crate::tls::{self, Tls, TlsError};
use crate::webrtc::{Network, WebRtc};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;

/// Chunk streams a peer may have messages in progress on at once.
const MAX_CHUNK_STREAMS: usize = 64;
/// How often the audit trail records the folded refusals of a minute that ended.
const AUDIT_TICK: std::time::Duration = std::time::Duration::from_secs(5);
/// Bytes all RTMP connections without an admitted publish may hold in incomplete messages together
/// (each holds at most [`crate::rtmp::chunks::UNADMITTED_MESSAGE_SIZE`]).
const UNADMITTED_BUFFER_BYTES: usize = 1 << 20;

/// Why the daemon could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} (set by {keys}): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The settings that chose it.
        keys: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// The data directory could not be made.
    #[error("cannot create the data directory {} (data.dir or --data): {source}", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The audit log could not be opened.
    #[error("cannot open the audit log in {}: {source}", .path.display())]
    Audit {
        /// The data directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The TLS trust for webhooks and JWKS could not be set up.
    #[error("server.tlsTrustFile: {0}")]
    Trust(#[from] TrustError),
    /// An application's datastore could not be opened.
    #[error("datastore of {app}: {source}")]
    Store {
        /// The application.
        app: String,
        /// Why.
        source: StoreError,
    },
    /// The configuration partition could not be cleaned up.
    #[error("configuration directory: {0}")]
    Config(WriteError),
    /// A bound listener's address could not be read.
    #[error("cannot read a listener's address: {0}")]
    Listen(io::Error),
    /// TLS for RTMPS or HTTPS could not be set up.
    #[error("TLS (server.tlsCertFile, server.tlsKeyFile): {0}")]
    Tls(#[from] TlsError),
    /// The shutdown signals could not be watched.
    #[error("cannot watch SIGTERM and SIGINT: {0}")]
    Signals(io::Error),
    /// The storage worker could not be started, or stopped.
    #[error("storage worker: {0}")]
    Storage(#[from] StorageError),
    /// The storage worker's thread could not be started.
    #[error("cannot start the storage worker: {0}")]
    StorageThread(io::Error),
}

/// One bound listener and what it serves.
struct Listener {
    protocol: &'static str,
    socket: TcpListener,
}

/// The running services, for whoever started them (the daemon, or a test in-process).
pub struct Services {
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// The outbound HTTP client (webhooks, JWKS).
    pub client: HttpClient,
    /// The panel's admin account.
    pub admin: Arc<AdminAccount>,
    /// When the daemon started.
    pub started: Instant,
    /// Decides every publish and play.
    pub pipeline: Arc<Pipeline>,
    /// Admits every publish and play: decides, reserves the session's place, commits.
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
    /// The settings in force, and their changes (which also reconfigure the pipeline and the
    /// log level).
    pub settings: Arc<LiveSettings>,
    /// The storage worker: every durable write and blocking file read after start.
    pub storage: Storage,
    /// The box's data keys: seal and open every secret kept on disk.
    pub keyring: Arc<Keyring>,
    /// The TLS key that did not open at start (then RTMPS and HTTPS are not served, or serve a
    /// new device certificate).
    pub tls_key: Option<Unopenable>,
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    settings: Settings,
    config_dir: Option<&Path>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let services = start(&settings, config_dir, Arc::new(SystemClock), Arc::new(RealFs)).await?;
    shutdown.await;
    log::info!("shutting down");
    let pipeline = services.pipeline.clone();
    let _ = tokio::task::spawn_blocking(move || pipeline.audit().close()).await;
    Ok(())
}

/// While no admin account exists, makes the setup code the panel's first password needs (on
/// the storage worker) and says where it is and where it goes.
async fn announce_setup_code(admin: &AdminAccount, data_dir: &Path) -> Result<(), AppError> {
    let made = admin.prepare_setup().await.map_err(admin_error)?;
    if let Some(code) = made {
        log::warn!(
            "no admin account yet: enter the setup code {code} in the web panel with the first password \
             (also in {})",
            data_dir.join(SETUP_FILE).display()
        );
    }
    Ok(())
}

/// Binds the listeners, starts serving them on the current runtime, and says where clients point.
/// The storage worker writes through `fs` (the real file system, or a test's).
pub async fn start(
    settings: &Settings,
    config_dir: Option<&Path>,
    clock: Arc<dyn Clock>,
    fs: Arc<dyn Fs>,
) -> Result<Arc<Services>, AppError> {
    let storage = Storage::start(fs).map_err(AppError::StorageThread)?;
    let (data_dir, fs) = (settings.server.data_dir.clone(), storage.fs());
    storage
        .run(move || fs.create_dir_all(&data_dir))
        .await?
        .map_err(|source| AppError::DataDir { path: settings.server.data_dir.clone(), source })?;
    let keyring = Arc::new(open_keyring(&settings.server, &storage).await?);
    let mut settings = settings.clone();
    settings.open_secrets(&keyring);
    let config_files = match config_dir.map(Path::to_path_buf) {
        Some(dir) => {
            let (fs, keyring, opened) = (storage.fs(), keyring.clone(), settings);
            let (files, sealed) = storage.run(move || config_files(&dir, fs, keyring, opened)).await??;
            settings = sealed;
            Some(files)
        }
        None => None,
    };
    for Unopenable { place, key, why } in settings.unopenable() {
        log::error!(
            "secrets: {place}: {key} cannot be opened ({why}): what needs it refuses until it is entered again"
        );
    }
    let (settings, server) = (&settings, &settings.server);
    let now = clock.unix_secs();
    let mut stores = HashMap::new();
    for name in settings.apps.keys() {
        let store = Datastore::open(&storage, &server.data_dir, name, now, keyring.clone())
            .await
            .map_err(|source| AppError::Store { app: name.clone(), source })?;
        stores.insert(name.clone(), Arc::new(store));
    }
    let admin = Arc::new(AdminAccount::open(&server.data_dir, storage.clone()).await.map_err(admin_error)?);
    announce_setup_code(&admin, &server.data_dir).await?;
    let pipeline = Arc::new(security_pipeline(settings, &stores, &storage).await?);
    for line in pipeline.describe() {
        log::info!("security {line}");
    }
    let limits = HubLimits {
        reader_queue_bytes: server.reader_queue_bytes as usize,
        gop_cache_bytes: server.gop_cache_bytes as usize,
    };
    let sessions = Arc::new(Sessions::default());
    let client = HttpClient::new(server.tls_trust_file.as_deref())?;
    let admission = Arc::new(Admission::new(pipeline.clone(), Arc::new(HttpWebhook::new(client.clone()))));
    let context = Arc::new(rtmp::Context {
        admission: admission.clone(),
        hub: Hub::new(limits),
        sessions: sessions.clone(),
        clock: clock.clone(),
        limits: rtmp::Limits {
            handshake_timeout: server.handshake_timeout.0,
            idle_timeout: server.idle_timeout.0,
            admission_timeout: server.rtmp_admission_timeout.0,
            guard: GuardLimits {
                max_chunk_size: server.rtmp_max_chunk_size,
                max_message_size: server.rtmp_max_message_size,
                max_chunk_streams: MAX_CHUNK_STREAMS,
            },
            end_sessions_with_grant: server.end_sessions_with_grant,
        },
        unadmitted: UnadmittedBudget::new(UNADMITTED_BUFFER_BYTES),
    });
    let tls = match server.rtmps_enabled || server.ssl_enabled {
        true => {
            let (server, fs, keyring) = (server.clone(), storage.fs(), keyring.clone());
            storage.run(move || tls::server_config(&server, fs.as_ref(), &keyring)).await??
        }
        false => Tls { config: None, unopenable: None },
    };

    let apps: Vec<&str> = settings.apps.keys().map(String::as_str).collect();
    log::info!("rampart {} serving applications: {}", env!("CARGO_PKG_VERSION"), apps.join(", "));
    let listeners = bind_all(settings, tls.config.is_some()).await?;
    let mut addresses = Vec::new();
    for listener in &listeners {
        let addr = listener.socket.local_addr().map_err(AppError::Listen)?;
        log::info!("{}", describe(listener.protocol, addr, apps.first().copied().unwrap_or_default()));
        addresses.push((listener.protocol, addr));
    }
    let watchers = settings_watchers(&pipeline, &stores);
    let services = Arc::new(Services {
        clock,
        client,
        admin,
        started: Instant::now(),
        pipeline,
        admission,
        hub: context.hub.clone(),
        sessions,
        webrtc: WebRtc::new(Network::from_settings(server)),
        stores,
        addresses,
        settings: Arc::new(LiveSettings::new(settings.clone(), config_files, storage.clone(), watchers)),
        storage,
        keyring,
        tls_key: tls.unopenable,
    });
    let http = Http::new(http_state(&services));
    let acceptor = || tls.config.clone().map(TlsAcceptor::from);
    let (rtmp_slots, http_slots) = connection_slots(server);
    for Listener { protocol, socket } in listeners {
        let task = match protocol {
            "RTMP" => tokio::spawn(rtmp::server::serve(socket, None, rtmp_slots.clone(), context.clone())),
            "RTMPS" => tokio::spawn(rtmp::server::serve(socket, acceptor(), rtmp_slots.clone(), context.clone())),
            "HTTP" => tokio::spawn(http_server::serve(socket, None, http_slots.clone(), http.clone())),
            _ => tokio::spawn(http_server::serve(socket, acceptor(), http_slots.clone(), http.clone())),
        };
        drop(task);
    }
    drop(tokio::spawn(fold_refusals(services.pipeline.clone(), services.clock.clone())));
    Ok(services)
}

/// The box's data keys, opened (or made) by the store `secrets.store` names, on the storage
/// worker: a TPM command blocks. Says which store holds them, and what did not open.
async fn open_keyring(server: &ServerSettings, storage: &Storage) -> Result<Keyring, AppError> {
    let (choice, device, pcrs) =
        (server.secrets_store, server.secrets_tpm_device.clone(), server.secrets_pcr_policy.clone());
    let (data_dir, fs) = (server.data_dir.clone(), storage.fs());
    let keyring = storage
        .run(move || {
            let store = secrets::store_for(choice, &device, pcrs, fs.as_ref(), &data_dir);
            Keyring::load(store.as_ref(), fs.as_ref(), &data_dir, Mint::IfNoneOpens)
        })
        .await?;
    let status = keyring.status();
    match status.hardware {
        true => log::info!("secrets: sealed by {}", status.store),
        false => log::warn!(
            "secrets: sealed by {} in {}: anyone who reads the data partition can open them (set secrets.store=tpm on a box with a TPM)",
            status.store,
            server.data_dir.join(keyring::DIR).display()
        ),
    }
    for problem in &status.problems {
        log::error!("secrets: {problem}");
    }
    Ok(keyring)
}

/// Records the folded refusals of each minute once it ends, even when no further event comes.
async fn fold_refusals(pipeline: Arc<Pipeline>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(AUDIT_TICK);
    loop {
        tick.tick().await;
        pipeline.audit().tick(clock.unix_secs());
    }
}

/// The connection slots of the RTMP and RTMPS listeners, and those of HTTP and HTTPS.
fn connection_slots(server: &ServerSettings) -> (Arc<Slots>, Arc<Slots>) {
    let rtmp = SlotLimits {
        total: server.rtmp_max_connections as usize,
        per_address: server.rtmp_max_connections_per_address as usize,
        reserved: 0,
    };
    let http = SlotLimits {
        total: server.http_max_connections as usize,
        per_address: server.http_max_connections_per_address as usize,
        reserved: server.http_dashboard_reserved_connections as usize,
    };
    (Slots::new(rtmp), Slots::new(http))
}

/// The security pipeline over each application's datastore, auditing to the data directory.
async fn security_pipeline(
    settings: &Settings,
    stores: &HashMap<String, Arc<Datastore>>,
    storage: &Storage,
) -> Result<Pipeline, AppError> {
    let server = &settings.server;
    let rotation = Rotation { max_bytes: u64::from(server.audit_log_max_bytes), keep: server.audit_log_rotated_files };
    let files = AuditFiles::open(storage, &server.data_dir, rotation)
        .await
        .map_err(|source| AppError::Audit { path: server.data_dir.clone(), source })?;
    Ok(Pipeline::new(settings, |app| store_of(stores, app), Arc::new(Audit::with_sink(Arc::new(files)))))
}

/// What the HTTP handlers reach of `services`.
fn http_state(services: &Services) -> State {
    State {
        clock: services.clock.clone(),
        keys: Arc::new(HttpKeySource::new(services.client.clone())),
        admin: services.admin.clone(),
        started: services.started,
        pipeline: services.pipeline.clone(),
        admission: services.admission.clone(),
        hub: services.hub.clone(),
        sessions: services.sessions.clone(),
        webrtc: services.webrtc.clone(),
        stores: services.stores.clone(),
        addresses: services.addresses.clone(),
        settings: services.settings.clone(),
        keyring: services.keyring.clone(),
        tls_key: services.tls_key.clone(),
    }
}

/// What a settings change reconfigures before it is answered: the security pipeline's
/// policies and lockout rule, and the log level. (The hub's limits need a restart.)
fn settings_watchers(pipeline: &Arc<Pipeline>, stores: &HashMap<String, Arc<Datastore>>) -> Vec<Watcher> {
    let (pipeline, stores) = (pipeline.clone(), stores.clone());
    let policies: Watcher = Box::new(move |settings| pipeline.reconfigure(settings, |app| store_of(&stores, app)));
    let log_level: Watcher = Box::new(|settings| log::set_max_level(settings.server.log_level.0));
    vec![policies, log_level]
}

/// The panel's admin account could not be read or prepared.
fn admin_error(source: StoreError) -> AppError {
    AppError::Store { app: "the panel's admin account".into(), source }
}

/// The writers of the configuration directory `dir`, vetting changes and sealing secrets with
/// `keyring`, after tidying it up: the temporary files a power cut left are removed, the files
/// edited by hand become their own last good copies, and the secrets written in clear are
/// sealed (the `settings` returned hold them sealed). Blocking: a job on the storage worker.
fn config_files(
    dir: &Path,
    fs: Arc<dyn Fs>,
    keyring: Arc<Keyring>,
    mut settings: Settings,
) -> Result<(ConfigFiles, Settings), AppError> {
    let vetting = keyring.clone();
    let vet = move |current: &Settings, next: &Settings| change_checks::vet(current, next, &vetting);
    let files = ConfigFiles::with_fs(dir, fs).vetted_by(Box::new(vet)).sealing_with(keyring);
    for (dir, removed) in files.remove_stale_temps().map_err(AppError::Config)? {
        if removed > 0 {
            log::warn!("removed {removed} temporary file(s) an interrupted write left in {}", dir.display());
        }
    }
    // A hand edit that cannot be adopted is still in force: the box starts all the same.
    match files.adopt_hand_edits() {
        Ok(paths) => {
            for path in paths {
                log::info!("{}: edited by hand; kept as written and as its last good copy", path.display());
            }
        }
        Err(e) => log::warn!("a file edited by hand could not become its own last good copy: {e}"),
    }
    files.seal_clear_secrets(&mut settings);
    Ok((files, settings))
}

/// An application's datastore as the pipeline sees it.
fn store_of(stores: &HashMap<String, Arc<Datastore>>, app: &str) -> Arc<dyn SecurityStore> {
    match stores.get(app) {
        Some(store) => store.clone(),
        None => Arc::new(Datastore::in_memory()),
    }
}

/// Binds every listener the server settings enable, in a fixed order; RTMPS and HTTPS only when
/// `tls` (their key opened).
async fn bind_all(settings: &Settings, tls: bool) -> Result<Vec<Listener>, AppError> {
    let server = &settings.server;
    let wanted = [
        ("RTMP", "rtmp.host, rtmp.port", server.rtmp_host, server.rtmp_port, true),
        ("RTMPS", "rtmp.host, rtmps.port", server.rtmp_host, server.rtmps_port, server.rtmps_enabled && tls),
        ("HTTP", "http.host, http.port", server.http_host, server.http_port, true),
        ("HTTPS", "http.host, https.port", server.http_host, server.https_port, server.ssl_enabled && tls),
    ];
    let mut listeners = Vec::new();
    for (protocol, keys, host, Port(port), enabled) in wanted {
        if !enabled {
            continue;
        }
        let addr = SocketAddr::new(host, port);
        let socket = TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, keys, source })?;
        listeners.push(Listener { protocol, socket });
    }
    Ok(listeners)
}

/// One log line saying where a client points for a listener.
fn describe(protocol: &str, addr: SocketAddr, app: &str) -> String {
    let (shown, hint) = match addr.ip() {
        ip if ip.is_unspecified() => {
            (SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port()), " (or this box's address)")
        }
        _ => (addr, ""),
    };
    let url = match protocol {
        "RTMP" | "RTMPS" => format!("publish and play at {}://{shown}/{app}/<streamId>", protocol.to_ascii_lowercase()),
        _ => format!("REST API and panel at {}://{shown}/", protocol.to_ascii_lowercase()),
    };
    format!("{protocol:<5} listening on {addr}: {url}{hint}")
}

/// Starts watching SIGTERM and SIGINT; the future completes at the first of them.
/// Call it inside the runtime, before serving, so an early signal is not lost.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, AppError> {
    let mut term = signal(SignalKind::terminate()).map_err(AppError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AppError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => log::info!("SIGTERM received"),
            _ = int.recv() => log::info!("SIGINT received"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_points_clients_at_a_reachable_address() {
        let any = SocketAddr::from(([0, 0, 0, 0], 1935));
        assert_eq!(
            describe("RTMP", any, "LiveApp"),
            "RTMP  listening on 0.0.0.0:1935: publish and play at rtmp://127.0.0.1:1935/LiveApp/<streamId> (or this box's address)"
        );
        let local = SocketAddr::from(([127, 0, 0, 1], 5080));
        assert_eq!(
            describe("HTTP", local, "LiveApp"),
            "HTTP  listening on 127.0.0.1:5080: REST API and panel at http://127.0.0.1:5080/"
        );
    }
}
