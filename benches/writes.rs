//! Time of one settings write and one datastore write, fsyncs included, on the disk under
//! `target/`: `cargo bench --bench writes`.

use rampart::cli::{Defaults, defaults_text};
use rampart::secrets::Secret;
use rampart::security::Action;
use rampart::security::store::OneTimeToken;
use rampart::storage::fs::RealFs;
use rampart::storage::mount::Remount;
use rampart::storage::writer::AtomicWriter;
use rampart::store::Datastore;
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
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

    let store = Datastore::open(dir.path(), "LiveApp", 0).expect("store");
    let token = |i: usize| OneTimeToken {
        token_id: Secret::new(format!("token-{i:06}-0123456789abcdef")),
        stream_id: "stream1".into(),
        kind: Action::Play,
        expire_date: u64::MAX,
        room_id: None,
    };
    for i in 0..100 {
        store.add_token(token(i), 0).expect("token");
    }
    let times = (100..100 + ROUNDS)
        .map(|i| {
            let start = Instant::now();
            store.add_token(token(i), 0).expect("token");
            start.elapsed()
        })
        .collect();
    println!("datastore write (one token added to 100 to 300):     {:?} median", median(times));
}
