//! The settings in force while the daemon runs: one snapshot (`Arc<Settings>`) that every reader
//! shares without copying it, swapped once per change. A change is checked, written and
//! remounted as one job on the storage worker, one change at a time (an async lock, so nothing
//! waits on it but the next change); the new snapshot then goes to the watchers: those given
//! here, called before the change is answered, and every [`LiveSettings::watch`] receiver.

use super::changes::{self, Applied, ConfigFiles, Target};
use super::{Invalid, Problem, Settings};
use crate::storage::Storage;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

/// Told of each new snapshot before the change is answered, so that what it rebuilds (the
/// pipeline's policies, the log level) is in force by then. It runs on the caller's thread and
/// must not block.
pub type Watcher = Box<dyn Fn(&Settings) + Send + Sync>;

/// The settings in force, and the way to change them.
pub struct LiveSettings {
    current: watch::Sender<Arc<Settings>>,
    files: Option<Arc<ConfigFiles>>,
    storage: Storage,
    one_change_at_a_time: Mutex<()>,
    watchers: Vec<Watcher>,
}

impl LiveSettings {
    /// `settings` in force, changed in `files` (none: started on the embedded defaults, which
    /// cannot change) by jobs on `storage`, each change told to `watchers`.
    pub fn new(settings: Settings, files: Option<ConfigFiles>, storage: Storage, watchers: Vec<Watcher>) -> Self {
        LiveSettings {
            current: watch::Sender::new(Arc::new(settings)),
            files: files.map(Arc::new),
            storage,
            one_change_at_a_time: Mutex::new(()),
            watchers,
        }
    }

    /// The snapshot in force (restart-needed changes included, as they will be after a restart).
    pub fn now(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// A receiver that sees each new snapshot (`changed`, `has_changed`).
    pub fn watch(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
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
        let current = self.now();
        let applied = self
            .storage
            .run(move || changes::apply(&files, &current, &target, &values))
            .await
            .unwrap_or_else(|e| Err(problem(&format!("the change was not written: {e}"))))?;
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
    async fn embedded_defaults_cannot_change() {
        let live = LiveSettings::new(super::super::load(None).unwrap().settings, None, storage(), vec![]);
        let change = vec![("logLevel".to_string(), "WARN".to_string())];
        assert!(live.change(Target::Server, change).await.is_err());
    }
}
