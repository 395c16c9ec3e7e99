//! The daemon's services started in-process on their own runtime thread, so a test can reach
//! the datastores and sessions while real clients (ffmpeg) talk to the listeners.

use super::ConfigDir;
use super::rest::{Answer, Rest};
use rampart::app::{self, Services};
use rampart::clock::{Clock, SystemClock};
use rampart::config;
use rampart::config::changes::{Applied, Target};
use rampart::secrets::Secret;
use rampart::security::Action;
use rampart::security::store::OneTimeToken;
use rampart::storage::fs::{Fs, RealFs};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A daemon running in this process; dropping it stops it.
pub struct InProcess {
    pub services: Arc<Services>,
    pub config: ConfigDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Starts the daemon on 127.0.0.1 with these extra server and LiveApp settings.
    pub fn start(server: &str, app: &str) -> Self {
        let config = ConfigDir::loopback(&format!("rtmps.port=0\nhttps.port=0\n{server}")).app("LiveApp", app);
        Self::start_in(config)
    }

    /// Stops the daemon and starts it again on the same configuration and data directory.
    pub fn restart(self) -> Self {
        Self::start_in(self.stop())
    }

    /// Stops the daemon; its configuration directory (holding its data directory) lives on.
    pub fn stop(mut self) -> ConfigDir {
        let config = std::mem::replace(&mut self.config, ConfigDir::new());
        drop(self);
        config
    }

    /// Starts the daemon on the configuration directory `config` as it is.
    pub fn start_in(config: ConfigDir) -> Self {
        Self::start_on(config, Arc::new(RealFs))
    }

    /// Starts the daemon on `config`, its storage worker writing through `fs`.
    pub fn start_on(config: ConfigDir, fs: Arc<dyn Fs>) -> Self {
        let settings = config::load(Some(config.path())).unwrap_or_else(|e| panic!("{e}")).settings;
        let dir = config.path().to_path_buf();
        let (services_tx, services_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let services =
                    app::start(&settings, Some(&dir), Arc::new(SystemClock), fs).await.expect("daemon starts");
                services_tx.send(services).expect("test alive");
                let _ = stopped.await;
            });
        });
        let services = services_rx.recv_timeout(Duration::from_secs(60)).expect("daemon started");
        InProcess { services, config, stop: Some(stop), thread: Some(thread) }
    }

    /// The address of a listener (`RTMP`, `RTMPS`).
    pub fn addr(&self, protocol: &str) -> SocketAddr {
        self.services.addresses.iter().find(|(p, _)| *p == protocol).map(|(_, a)| *a).expect("listener")
    }

    /// The setup code the first password needs, from `data.dir/setup-code`.
    pub fn setup_code(&self) -> String {
        let file = self.config.file("data/setup-code");
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).trim().to_string()
    }

    /// `rtmp://127.0.0.1:port/LiveApp/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/LiveApp/{path}", self.addr("RTMP"))
    }

    /// Waits until `stream` is live with at least `readers` readers.
    pub fn wait_live(&self, stream: &str, readers: usize) {
        wait_for(&format!("{stream} live with {readers} readers"), || {
            self.services
                .hub
                .live_streams()
                .iter()
                .any(|s| s.stream == stream && s.readers >= readers && s.video.is_some())
        });
    }

    /// Changes settings as the REST API does (written on the daemon's storage worker, in force
    /// when this returns), waiting for the change from the test's thread.
    pub fn change_settings(&self, target: Target, values: Vec<(String, String)>) -> Result<Applied, config::Invalid> {
        let waiter = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        waiter.block_on(self.services.settings.change(target, values))
    }

    /// Whether the audit trail holds a refused API call whose reason contains `reason`.
    pub fn api_refused(&self, reason: &str) -> bool {
        let events = self.services.pipeline.audit().recent();
        events.iter().any(|e| e.action == "api" && !e.allowed && e.reason.contains(reason))
    }

    /// Adds a one-time token `id` for `kind` on LiveApp's `stream`, good for an hour.
    pub fn one_time_token(&self, id: &str, stream: &str, kind: Action) -> String {
        let now = SystemClock.unix_secs();
        let token = OneTimeToken {
            token_id: Secret::new(id.into()),
            stream_id: stream.into(),
            kind,
            expire_date: now + 3600,
            room_id: None,
        };
        super::block_on(self.services.stores["LiveApp"].add_token(token, now)).expect("room for a token");
        id.to_string()
    }

    /// POSTs the SDP `offer` to `path` (`/LiveApp/whep/cam1?token=...`) from 127.0.0.1.
    pub fn offer(&self, path: &str, offer: &str) -> Answer {
        Rest::new(self.addr("HTTP")).post_as(path, "application/sdp", offer)
    }

    /// Waits until `stream` is no longer live.
    pub fn wait_not_live(&self, stream: &str) {
        wait_for(&format!("{stream} no longer live"), || {
            !self.services.hub.live_streams().iter().any(|s| s.stream == stream)
        });
    }

    /// Waits until the audit trail holds an event for `stream` whose reason contains `reason`.
    pub fn wait_audit(&self, stream: &str, reason: &str) {
        wait_for(&format!("audit event {reason:?} for {stream}"), || {
            self.services.pipeline.audit().recent().iter().any(|e| e.stream == stream && e.reason.contains(reason))
        });
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `condition` until it holds; fails the test after a minute.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Client(pub Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Client {
    /// Waits for the process to end (at most a minute); returns whether it succeeded.
    pub fn wait(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(Instant::now() < deadline, "client did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// ffmpeg publishing a test pattern with tone (H.264 + AAC) to `url` for `seconds`.
pub fn publish(url: &str, seconds: u32) -> Client {
    let child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=1000"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-c:a", "aac"])
        .args(["-t", &seconds.to_string(), "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is installed (tests/run.sh installs it)");
    Client(child)
}

/// ffmpeg reading `url` (copying, not decoding) for at most `seconds`, writing progress to a file.
pub struct Reader {
    pub client: Client,
    progress: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Reader {
    pub fn start(url: &str, seconds: u32, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let progress = dir.path().join("progress");
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(extra)
            .args(["-i", url, "-t", &seconds.to_string(), "-map", "0:v", "-c", "copy", "-f", "null", "-"])
            .arg("-progress")
            .arg(&progress)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        Reader { client: Client(child), progress, _dir: dir }
    }

    /// Video frames received so far (ffmpeg reports progress about twice a second).
    pub fn frames(&self) -> u64 {
        let text = std::fs::read_to_string(&self.progress).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("frame="))
            .filter_map(|n| n.trim().parse().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// Waits until at least `n` frames arrived.
    pub fn wait_frames(&self, n: u64) {
        wait_for(&format!("{n} frames"), || self.frames() >= n);
    }
}
