//! The storage worker: one thread that owns every durable write and every blocking file read
//! after start (the configuration writer and its remounts, the datastore, the admin account, the
//! audit files, the device certificate). The runtime thread hands it jobs through a bounded queue
//! and awaits their results, so that an fsync of 300 ms on a worn SD card delays no frame and no
//! unrelated request.
//!
//! One thread rather than `spawn_blocking`: the jobs run in the order they were queued (a change
//! and the read after it see the same disk), a burst of jobs finds the thread awake, and the
//! journal's group commit ([`journal`]) gathers what queued up behind an fsync into the next one.

// The one module that may call std::fs writes, syncs and mount(2): .clippy/storage-rule (a
// lint step of tests/run.sh) refuses them everywhere else.
#![allow(clippy::disallowed_methods)]

pub mod audit_file;
pub mod fs;
pub mod journal;
pub mod mount;
#[cfg(test)]
pub(crate) mod sim;
pub mod writer;

use fs::Fs;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Jobs the queue to the worker holds; a sender awaits room beyond that (it never blocks).
pub const QUEUE_JOBS: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The worker has stopped (the daemon is shutting down, or a job panicked).
    #[error("the storage worker has stopped")]
    Stopped,
    /// The queue is full and the job was not waited for.
    #[error("the storage queue is full")]
    Full,
}

/// A handle on the storage worker; clones share the one thread.
#[derive(Clone)]
pub struct Storage {
    queue: mpsc::Sender<Job>,
    fs: Arc<dyn Fs>,
}

impl Storage {
    /// Starts the worker thread over `fs` (the real file system, or a test's).
    pub fn start(fs: Arc<dyn Fs>) -> std::io::Result<Self> {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE_JOBS);
        std::thread::Builder::new().name("storage".into()).spawn(move || {
            while let Some(job) = jobs.blocking_recv() {
                job();
            }
        })?;
        Ok(Storage { queue, fs })
    }

    /// The file system the worker's jobs use.
    pub fn fs(&self) -> Arc<dyn Fs> {
        self.fs.clone()
    }

    /// Runs `job` on the worker and waits (asynchronously) for its result.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, StorageError> {
        let (job, result) = replying(job);
        self.queue.send(job).await.map_err(|_| StorageError::Stopped)?;
        result.await.map_err(|_| StorageError::Stopped)
    }

    /// Runs `job` on the worker and waits for its result, blocking the calling thread: never
    /// call it on the runtime thread (tests, and shutdown through `spawn_blocking`, do).
    pub fn run_blocking<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, StorageError> {
        let (job, result) = replying(job);
        self.queue.blocking_send(job).map_err(|_| StorageError::Stopped)?;
        result.blocking_recv().map_err(|_| StorageError::Stopped)
    }

    /// Queues `job` without waiting for its end, and without needing the caller to stay: when
    /// the queue is full a task of its own waits for room (off any runtime, this thread waits).
    /// A job the stopped worker will not run is dropped.
    pub fn detach(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        if let Err(mpsc::error::TrySendError::Full(job)) = self.queue.try_send(job) {
            let queue = self.queue.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(async move { drop(queue.send(job).await) })),
                Err(_) => drop(queue.blocking_send(job)),
            }
        }
    }

    /// Queues `job` without waiting for room or for its end (a flush of buffered lines, say).
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), StorageError> {
        self.queue.try_send(Box::new(job)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StorageError::Full,
            mpsc::error::TrySendError::Closed(_) => StorageError::Stopped,
        })
    }
}

/// `job` as a queued job that sends its result to the receiver.
fn replying<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> (Job, oneshot::Receiver<T>) {
    let (reply, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(job());
    });
    (job, result)
}

#[cfg(test)]
impl Storage {
    /// Holds the worker, as a slow fsync would, until something is sent on the answer (so that
    /// what is queued meanwhile shows how it is grouped).
    pub(crate) fn hold(&self) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        self.submit(move || {
            let _ = held.recv();
        })
        .expect("room in the storage queue");
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_off_the_calling_thread() {
        let storage = Storage::start(Arc::new(fs::RealFs)).unwrap();
        let caller = std::thread::current().id();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..10 {
            let order = order.clone();
            storage.submit(move || order.lock().unwrap().push(i)).unwrap();
        }
        let thread = storage.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(thread, caller);
        assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    }
}
