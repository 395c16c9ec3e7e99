//! On a box whose every fsync takes 300 ms (a worn SD card), settings changes from the panel and
//! publishes admitted by one-time tokens (each consume durable before its session starts) delay
//! no frame of another stream and no unrelated request: the writes, fsyncs and remounts run on
//! the storage worker, and only the change or the admission itself waits for them.

mod common;

use common::ConfigDir;
use common::daemon::{InProcess, publish};
use common::rest::Rest;
use rampart::security::Action;
use rampart::security::store::SecurityStore;
use rampart::storage::fs::{Fs, RealFs};
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Under qemu-user (the ARM builds' tests on the host) the daemon runs several times slower:
/// the fsync and the bounds grow together, so one fsync on the runtime thread still shows.
const SCALE: u64 = if cfg!(target_arch = "x86_64") { 1 } else { 4 };
/// How long each fsync takes.
const SYNC: Duration = Duration::from_millis(300 * SCALE);
/// The most an unrelated request may be delayed.
const REQUEST_BOUND: Duration = Duration::from_millis(50 * SCALE);
/// The longest pause between two reads of the player of another stream (a 30 fps stream sends
/// every 33 ms; one fsync on the runtime thread would pause it for a whole SYNC).
const FRAME_GAP_BOUND: Duration = Duration::from_millis(250 * SCALE);
/// Publishes admitted by one-time tokens while the player watches.
const TOKEN_PUBLISHES: usize = 4;

/// The real file system with fsyncs as slow as a worn SD card's, counting them.
struct SlowSync {
    syncs: AtomicUsize,
}

impl SlowSync {
    fn sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(SYNC);
    }
}

impl Fs for SlowSync {
    fn create_new(&self, path: &Path, bytes: &[u8], like: &Path) -> io::Result<()> {
        RealFs.create_new(path, bytes, like)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.sync();
        RealFs.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sync();
        RealFs.sync_dir(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        RealFs.read(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        RealFs.append(path, bytes)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.sync();
        RealFs.sync_data(path)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        RealFs.set_len(path, len)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
}

/// ffmpeg playing `url` into a pipe, packet by packet; a thread notes when each read arrives.
struct TimedPlayer {
    child: common::daemon::Client,
    reads: std::thread::JoinHandle<Vec<Instant>>,
}

impl TimedPlayer {
    fn start(url: &str) -> Self {
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i", url])
            .args(["-map", "0:v", "-c", "copy", "-flush_packets", "1", "-f", "flv", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg is installed (tests/run.sh installs it)");
        let mut out = child.stdout.take().expect("piped stdout");
        let reads = std::thread::spawn(move || {
            let (mut buf, mut at) = (vec![0u8; 64 * 1024], Vec::new());
            while out.read(&mut buf).is_ok_and(|n| n > 0) {
                at.push(Instant::now());
            }
            at
        });
        TimedPlayer { child: common::daemon::Client(child), reads }
    }

    /// Stops the player; the reads it saw arrive.
    fn stop(self) -> Vec<Instant> {
        drop(self.child);
        self.reads.join().expect("the reading thread")
    }
}

#[test]
fn settings_changes_and_token_publishes_on_slow_storage_stall_nothing_else() {
    let fs = Arc::new(SlowSync { syncs: AtomicUsize::new(0) });
    let config = ConfigDir::loopback("").app("LiveApp", "publishTokenControlEnabled=true\n");
    let daemon = InProcess::start_on(config, fs.clone());
    let addr = daemon.addr("HTTP");
    let mut panel = Rest::new(addr).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    // The stream another viewer watches throughout.
    let steady = daemon.one_time_token("steady-token", "steady", Action::Publish);
    let _publisher = publish(&daemon.url(&format!("steady?token={steady}")), 60);
    daemon.wait_live("steady", 0);
    let player = TimedPlayer::start(&daemon.url("steady"));
    daemon.wait_live("steady", 1);
    let tokens: Vec<String> = (0..TOKEN_PUBLISHES)
        .map(|i| daemon.one_time_token(&format!("burst-token-{i}"), &format!("burst{i}"), Action::Publish))
        .collect();

    let before = fs.syncs.load(Ordering::Relaxed);
    let watching_from = Instant::now();
    let changes = std::thread::spawn(move || {
        let started = Instant::now();
        let statuses: Vec<u16> = [7, 8]
            .iter()
            .map(|n| panel.put("/rest/v2/server-settings", &format!(r#"{{"server.lockoutFailures": {n}}}"#)).status)
            .collect();
        (statuses, started.elapsed())
    });
    let publishers: Vec<_> =
        tokens.iter().enumerate().map(|(i, t)| publish(&daemon.url(&format!("burst{i}?token={t}")), 3)).collect();

    // Unrelated requests for as long as the changes and the admissions run.
    let other = Rest::new(addr);
    let (mut worst, mut during) = (Duration::ZERO, 0);
    let admitted = |i: usize| {
        daemon
            .services
            .pipeline
            .audit()
            .recent()
            .iter()
            .any(|e| e.stream == format!("burst{i}") && e.allowed && e.reason.contains("one-time token"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !changes.is_finished() || !(0..TOKEN_PUBLISHES).all(admitted) {
        assert!(Instant::now() < deadline, "the changes and admissions did not end");
        let started = Instant::now();
        assert_eq!(other.get("/rest/v2/first-login-status").status, 200);
        worst = worst.max(started.elapsed());
        during += 1;
    }
    let watched_until = Instant::now();
    let (statuses, took) = changes.join().expect("the changes' thread");
    drop(publishers);
    let reads = player.stop();

    assert_eq!(statuses, [200, 200], "both changes were made");
    assert_eq!(daemon.services.settings.now().server.lockout_failures, 8);
    assert!(took >= SYNC * 8, "the changes waited for their fsyncs ({took:?})");
    let store = &daemon.services.stores["LiveApp"];
    for token in &tokens {
        assert!(store.one_time_token(token).is_none(), "{token} was consumed");
    }
    let syncs = fs.syncs.load(Ordering::Relaxed) - before;
    assert!(syncs > 8, "{syncs} fsyncs: the changes' eight and the consumes'");

    assert!(during >= 10, "only {during} requests were made meanwhile");
    assert!(worst <= REQUEST_BOUND, "an unrelated request took {worst:?} while durable writes ran");
    let watched: Vec<&Instant> = reads.iter().filter(|t| **t >= watching_from && **t <= watched_until).collect();
    let gap = watched.windows(2).map(|w| w[1].duration_since(*w[0])).max().unwrap_or(Duration::MAX);
    assert!(watched.len() >= 10, "the player read {} times meanwhile", watched.len());
    assert!(gap <= FRAME_GAP_BOUND, "the player of another stream waited {gap:?} for a frame");
    eprintln!("worst unrelated request {worst:?} over {during}; worst player gap {gap:?}; {syncs} fsyncs");
}
