//! A settings change made from the panel on a box whose every fsync takes 300 ms (a worn SD
//! card) delays no unrelated request: the change's checks, writes, fsyncs and remount run on the
//! storage worker, and only the change itself waits for them.

mod common;

use common::ConfigDir;
use common::daemon::InProcess;
use common::rest::Rest;
use rampart::storage::fs::{Fs, RealFs};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long each fsync takes.
const SYNC: Duration = Duration::from_millis(300);
/// The most an unrelated request may be delayed.
const BOUND: Duration = Duration::from_millis(50);

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
}

#[test]
fn a_settings_change_on_slow_storage_delays_no_other_request() {
    let fs = Arc::new(SlowSync { syncs: AtomicUsize::new(0) });
    let config = ConfigDir::loopback("").app("LiveApp", "");
    let daemon = InProcess::start_on(config, fs.clone());
    let addr = daemon.addr("HTTP");
    let mut panel = Rest::new(addr).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);

    let before = fs.syncs.load(Ordering::Relaxed);
    let change = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = panel.put("/rest/v2/server-settings", r#"{"server.lockoutFailures": 7}"#);
        (answer.status, started.elapsed())
    });
    // Unrelated requests for as long as the change runs (a change waits for four fsyncs).
    let other = Rest::new(addr);
    let (mut worst, mut during) = (Duration::ZERO, 0);
    while !change.is_finished() {
        let started = Instant::now();
        assert_eq!(other.get("/rest/v2/first-login-status").status, 200);
        worst = worst.max(started.elapsed());
        during += 1;
    }
    let (status, took) = change.join().expect("the change's thread");
    assert_eq!(status, 200, "the change was made");
    let syncs = fs.syncs.load(Ordering::Relaxed) - before;
    assert!(syncs >= 4, "the change fsynced {syncs} times");
    assert!(took >= SYNC * 4, "the change waited for its fsyncs ({took:?})");
    assert!(worst <= BOUND, "an unrelated request took {worst:?} during a settings change");
    assert!(during >= 10, "only {during} requests were made during the change");
    assert_eq!(daemon.services.settings.now().server.lockout_failures, 7);
}
