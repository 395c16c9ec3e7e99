//! The settings in force while the daemon runs: one snapshot (`Arc<Settings>`) that every reader
//! shares without copying it, swapped once per change. A change is one job on the storage
//! worker: it reads the snapshot in force, checks, writes and remounts, swaps the new snapshot in
//! and tells the watchers (those given here, and every [`LiveSettings::watch`] receiver). The
//! worker runs jobs in order, so changes apply one after another, and a change whose caller went
//! away (a closed connection) is still applied whole once it is written. Changes also wait their
//! turn on an async lock before they queue, so that a burst of them never crowds the worker's
//! queue ahead of the datastore's writes, and nothing but the next change waits on it.

use super::changes::{self, Applied, ConfigFiles, Target};
use super::{Invalid, Problem, Settings};
use crate::storage::Storage;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Told of each new snapshot before the change is answered, so that what it rebuilds (the
/// pipeline's policies, the log level) is in force by then. It runs on the storage worker and
/// must be quick (it rebuilds in memory).
pub type Watcher = Box<dyn Fn(&Settings) + Send + Sync>;

/// The settings in force, and the way to change them.
pub struct LiveSettings {
    shared: Arc<Shared>,
    files: Option<Arc<ConfigFiles>>,
    storage: Storage,
    one_change_at_a_time: Mutex<()>,
}

/// What the change jobs reach on the worker.
struct Shared {
    current: watch::Sender<Arc<Settings>>,
    watchers: Vec<Watcher>,
}

impl LiveSettings {
    /// `settings` in force, changed in `files` (none: started on the embedded defaults, which
    /// cannot change) by jobs on `storage`, each change told to `watchers`.
    pub fn new(settings: Settings, files: Option<ConfigFiles>, storage: Storage, watchers: Vec<Watcher>) -> Self {
        LiveSettings {
            shared: Arc::new(Shared { current: watch::Sender::new(Arc::new(settings)), watchers }),
            files: files.map(Arc::new),
            storage,
            one_change_at_a_time: Mutex::new(()),
        }
    }

    /// The snapshot in force (restart-needed changes included, as they will be after a restart).
    pub fn now(&self) -> Arc<Settings> {
        self.shared.current.borrow().clone()
    }

    /// A receiver that sees each new snapshot (`changed`, `has_changed`).
    pub fn watch(&self) -> watch::Receiver<Arc<Settings>> {
        self.shared.current.subscribe()
    }

    /// True when the configuration partition could not be made read-only again after a write.
    pub fn stuck_writable(&self) -> bool {
        self.files.as_ref().is_some_and(|files| files.stuck_writable())
    }

    /// Changes settings: checked as a start would, written through the atomic writer on the
    /// storage worker, then in force at once where they can be; the answer names the keys that
    /// need a restart. A change that fails its checks changes nothing.
    pub async fn change(&self, target: Target, values: Vec<(String, String)>) -> Result<Applied, Invalid> {
        let Some(files) = self.files.clone() else {
            return Err(problem("started on embedded defaults (no --config): there is no file to change"));
        };
        let _turn = self.one_change_at_a_time.lock().await;
        let shared = self.shared.clone();
        self.storage
            .run(move || shared.apply(&files, &target, &values))
            .await
            .unwrap_or_else(|e| Err(problem(&format!("the change was not written: {e}"))))
    }
}

impl Shared {
    /// Applies a change to the snapshot in force (on the worker, whose order serializes them).
    fn apply(&self, files: &ConfigFiles, target: &Target, values: &[(String, String)]) -> Result<Applied, Invalid> {
        let current = self.current.borrow().clone();
        let applied = changes::apply(files, &current, target, values)?;
        let next = Arc::new(applied.settings.clone());
        self.current.send_replace(next.clone());
        for watcher in &self.watchers {
            watcher(&next);
        }
        Ok(applied)
    }
}

fn problem(message: &str) -> Invalid {
    let problem = Problem { file: PathBuf::new(), line: None, key: None, message: message.to_string() };
    Invalid { problems: vec![problem], warnings: vec![] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::RealFs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn storage() -> Storage {
        Storage::start(Arc::new(RealFs)).unwrap()
    }

    #[tokio::test]
    async fn a_change_swaps_the_snapshot_and_tells_its_watchers_before_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.properties"), "logLevel=INFO\n").unwrap();
        let settings = super::super::load(Some(dir.path())).unwrap().settings;
        let told = Arc::new(AtomicUsize::new(0));
        let counter = told.clone();
        let watcher: Watcher = Box::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let live = LiveSettings::new(settings, Some(ConfigFiles::new(dir.path())), storage(), vec![watcher]);
        let before = live.now();
        let mut receiver = live.watch();
        assert!(Arc::ptr_eq(&before, &live.now()), "reading shares the snapshot");

        let change = vec![("server.lockoutFailures".to_string(), "7".to_string())];
        live.change(Target::Server, change).await.unwrap();
        assert_eq!(told.load(Ordering::Relaxed), 1);
        assert!(receiver.has_changed().unwrap());
        assert_eq!(receiver.borrow_and_update().server.lockout_failures, 7);
        assert_eq!(live.now().server.lockout_failures, 7);
        assert_eq!(before.server.lockout_failures, super::super::load(None).unwrap().settings.server.lockout_failures);

        let refused = vec![("server.lockoutFailures".to_string(), "junk".to_string())];
        assert!(live.change(Target::Server, refused).await.is_err());
        assert_eq!(told.load(Ordering::Relaxed), 1, "a refused change tells no one");
        assert!(!receiver.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_change_whose_caller_went_away_is_applied_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.properties"), "logLevel=INFO\n").unwrap();
        let settings = super::super::load(Some(dir.path())).unwrap().settings;
        let storage = storage();
        let live = LiveSettings::new(settings, Some(ConfigFiles::new(dir.path())), storage.clone(), vec![]);
        // The worker is busy: the change queues behind that job, and its caller gives up.
        storage.submit(|| std::thread::sleep(std::time::Duration::from_millis(200))).unwrap();
        let change = vec![("server.lockoutFailures".to_string(), "7".to_string())];
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(20), live.change(Target::Server, change));
        assert!(gave_up.await.is_err(), "the caller went away before the change was written");
        storage.run(|| ()).await.unwrap();
        assert_eq!(live.now().server.lockout_failures, 7, "what was written is in force");
        let reloaded = super::super::load(Some(dir.path())).unwrap().settings;
        assert_eq!(reloaded.server.lockout_failures, 7);
    }

    #[tokio::test]
    async fn embedded_defaults_cannot_change() {
        let live = LiveSettings::new(super::super::load(None).unwrap().settings, None, storage(), vec![]);
        let change = vec![("logLevel".to_string(), "WARN".to_string())];
        assert!(live.change(Target::Server, change).await.is_err());
    }
}
