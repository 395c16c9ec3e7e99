//! Time of one settings write, and what a one-time token costs the disk: bytes written and
//! fsyncs per admitted token on the old path (the whole datastore rewritten through the atomic
//! writer on every change) and on the journal (one record; consumes close together share one
//! fdatasync), on the disk under `target/`: `cargo bench --bench writes`.

use rampart::cli::{Defaults, defaults_text};
use rampart::secrets::file::KeyFile;
use rampart::secrets::keyring::Mint;
use rampart::secrets::{Keyring, Secret};
use rampart::security::Action;
use rampart::security::store::OneTimeToken;
use rampart::storage::Storage;
use rampart::storage::fs::{CountingFs, Counts, RealFs};
use rampart::storage::mount::Remount;
use rampart::storage::writer::AtomicWriter;
use rampart::store::Datastore;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;
/// Concurrent consumes of the burst.
const BURST: usize = 100;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn token(i: usize) -> OneTimeToken {
    OneTimeToken {
        token_id: Secret::new(format!("token-{i:06}-0123456789abcdef")),
        stream_id: "stream1".into(),
        kind: Action::Play,
        expire_date: u64::MAX,
        room_id: None,
    }
}

fn id(i: usize) -> String {
    token(i).token_id.expose().clone()
}

/// What happened on the disk between two counts.
fn since(before: Counts, after: Counts) -> Counts {
    Counts { syncs: after.syncs - before.syncs, bytes_written: after.bytes_written - before.bytes_written }
}

/// A journaled store in `dir` with `tokens` tokens, over a counting file system.
async fn store_with(dir: &Path, tokens: usize) -> (Arc<Datastore>, Arc<CountingFs<RealFs>>) {
    let fs = Arc::new(CountingFs::new(RealFs));
    let storage = Storage::start(fs.clone()).expect("storage worker");
    let keyring = Keyring::load(&KeyFile, &RealFs, dir, Mint::IfNoneOpens);
    let store = Datastore::open(&storage, dir, "LiveApp", 0, Arc::new(keyring)).await.expect("store");
    for i in 0..tokens {
        store.add_token(token(i), 0).await.expect("token");
    }
    (Arc::new(store), fs)
}

/// The old path: every consume rewrote the whole store (file and last good copy) through the
/// atomic writer. Measured by rewriting the snapshot of a store with `tokens` tokens.
async fn before(root: &Path, tokens: usize) {
    let dir = tempfile::tempdir_in(root).expect("temp dir");
    let (store, _) = store_with(dir.path(), tokens).await;
    store.compact().await.expect("snapshot");
    let body = AtomicWriter::with_fs(dir.path(), RealFs, Remount::never())
        .load("store-LiveApp.json", &|_| true)
        .expect("load")
        .expect("snapshot written")
        .body()
        .to_vec();
    let counting = Arc::new(CountingFs::new(RealFs));
    let writer = AtomicWriter::with_fs(dir.path(), counting.clone(), Remount::never());
    let start = Instant::now();
    writer.write("store-LiveApp.json", &body).expect("write");
    let took = start.elapsed();
    let c = counting.counts();
    println!(
        "BEFORE, one consume: the store of {tokens:>4} tokens rewritten whole: {:>7} bytes, {} fsyncs, {took:?}",
        c.bytes_written, c.syncs
    );
}

/// The journal, in a store of `tokens` other tokens: one consume alone, a burst of concurrent
/// consumes, and a long run of tokens made and consumed one by one with the compactions it causes.
async fn after(root: &Path, tokens: usize) {
    const RUN: usize = 2_000;
    let dir = tempfile::tempdir_in(root).expect("temp dir");
    let (store, fs) = store_with(dir.path(), tokens).await;
    for i in tokens..=tokens + BURST {
        store.add_token(token(i), 0).await.expect("token");
    }

    let start = Instant::now();
    let counted = fs.counts();
    assert!(store.consume_one_time_token_durably(&id(tokens)).await.unwrap_or(false));
    let (c, took) = (since(counted, fs.counts()), start.elapsed());
    println!(
        "AFTER,  one consume alone, store of {tokens:>4} tokens:          {:>7} bytes, {} fsyncs, {took:?}",
        c.bytes_written, c.syncs
    );

    let counted = fs.counts();
    let start = Instant::now();
    let consumes: Vec<_> = (tokens + 1..=tokens + BURST)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_one_time_token_durably(&id(i)).await.unwrap_or(false) })
        })
        .collect();
    for consume in consumes {
        assert!(consume.await.expect("consume"));
    }
    let (c, took) = (since(counted, fs.counts()), start.elapsed());
    println!(
        "AFTER,  {BURST} concurrent consumes, store of {tokens:>4} tokens: {:>7} bytes, {} fsyncs in all \
         ({:.1} bytes, {:.2} fsyncs a token), {took:?}",
        c.bytes_written,
        c.syncs,
        c.bytes_written as f64 / BURST as f64,
        c.syncs as f64 / BURST as f64
    );

    let counted = fs.counts();
    for i in tokens + BURST + 1..tokens + BURST + 1 + RUN {
        store.add_token(token(i), 0).await.expect("token");
        assert!(store.consume_one_time_token_durably(&id(i)).await.unwrap_or(false));
    }
    let c = since(counted, fs.counts());
    println!(
        "AFTER,  {RUN} tokens made then consumed one by one, store of {tokens:>4} tokens, compactions included: \
         {:.1} bytes, {:.2} fsyncs a token (made + consumed)",
        c.bytes_written as f64 / RUN as f64,
        c.syncs as f64 / RUN as f64
    );
}

/// The round trip of an empty job: on the storage worker (one thread behind a bounded queue,
/// the daemon's choice) and through tokio's `spawn_blocking`, one at a time and 100 at once.
async fn dispatch() {
    const JOBS: usize = 10_000;
    let storage = Storage::start(Arc::new(RealFs)).expect("storage worker");
    let start = Instant::now();
    for _ in 0..JOBS {
        storage.run(|| ()).await.expect("job");
    }
    let worker = start.elapsed() / JOBS as u32;
    let start = Instant::now();
    for _ in 0..JOBS {
        tokio::task::spawn_blocking(|| ()).await.expect("job");
    }
    let blocking = start.elapsed() / JOBS as u32;
    let start = Instant::now();
    for _ in 0..JOBS / 100 {
        let jobs: Vec<_> = (0..100).map(|_| storage.run(|| ())).collect();
        for job in jobs {
            job.await.expect("job");
        }
    }
    let worker_burst = start.elapsed() / JOBS as u32;
    let start = Instant::now();
    for _ in 0..JOBS / 100 {
        let jobs: Vec<_> = (0..100).map(|_| tokio::task::spawn_blocking(|| ())).collect();
        for job in jobs {
            job.await.expect("job");
        }
    }
    let blocking_burst = start.elapsed() / JOBS as u32;
    println!(
        "empty job round trip: storage worker {worker:?} (in bursts of 100: {worker_burst:?} a job); \
         spawn_blocking {blocking:?} (in bursts of 100: {blocking_burst:?} a job)"
    );
}

fn main() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tempfile::tempdir_in(root).expect("temp dir under target/");

    let writer = AtomicWriter::with_fs(dir.path(), RealFs, Remount::never());
    let settings = defaults_text(Defaults::App);
    let times = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            writer.write("LiveApp.properties", settings.as_bytes()).expect("write");
            start.elapsed()
        })
        .collect();
    println!("settings write ({} bytes, file and last good copy):  {:?} median", settings.len(), median(times));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        dispatch().await;
        for tokens in [100, 1_000] {
            before(root, tokens).await;
            after(root, tokens).await;
        }
    });
}
