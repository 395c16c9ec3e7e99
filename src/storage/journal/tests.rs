//! The journal against the simulated disk ([`crate::storage::sim`]): for every call k of a
//! sequence of appends and compactions, and whatever a power cut leaves of the bytes not yet
//! synced, the store loads to the state before the append in flight or after it (never a torn
//! one), keeps every append that returned, and takes appends again after the cut. Then the group
//! commit: concurrent appends share fdatasyncs.

use super::*;
use crate::storage::fs::CountingFs;
use crate::storage::sim::{Ignore, SimFs, Tail};

/// Compaction bound of the crash test: a few records per journal.
const SMALL_BOUND: u64 = 60;

fn names() -> Names {
    Names { snapshot: "store-T.json".into(), journal: "store-T.journal".into() }
}

type Disk = Arc<SimFs>;

fn open(fs: &Disk) -> Result<(JournalFile<Disk>, Loaded), JournalError> {
    let writer = AtomicWriter::with_fs(Path::new("/data"), fs.clone(), Remount::never());
    JournalFile::open(writer, names(), &|_| true, SMALL_BOUND)
}

/// The state as a snapshot body: one record a line.
fn snapshot_of(state: &[String]) -> Vec<u8> {
    state.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes()
}

/// The state an open found: the snapshot's lines, then the journal's records.
fn state_of(loaded: &Loaded) -> Vec<String> {
    let body = loaded.snapshot.as_ref().map(|s| String::from_utf8_lossy(s.body()).into_owned()).unwrap_or_default();
    let snapshot = body.lines().map(str::to_string);
    snapshot.chain(loaded.records.iter().map(|r| String::from_utf8_lossy(r).into_owned())).collect()
}

/// Batches of records, each appended with one write; long enough for several compactions.
fn batches() -> Vec<Vec<String>> {
    let sizes = [1, 3, 1, 2, 1, 1, 4, 1];
    let mut n = 0;
    sizes
        .iter()
        .map(|size| {
            (0..*size)
                .map(|_| {
                    n += 1;
                    format!("record-{n}")
                })
                .collect()
        })
        .collect()
}

/// Opens, appends `batches` (compacting when due), cutting the power after call `cut`; returns
/// the disk and how many batches were appended.
fn run_until_cut(ignores: Ignore, batches: &[Vec<String>], cut: usize) -> (Disk, usize) {
    let fs = Arc::new(SimFs::new(ignores));
    fs.cut_power_after(cut);
    let Ok((mut file, _)) = open(&fs) else { return (fs, 0) };
    let mut state = Vec::new();
    let mut completed = 0;
    for batch in batches {
        let frames: Vec<u8> = batch.iter().flat_map(|r| frame(r.as_bytes()).unwrap()).collect();
        if file.write(&frames).is_err() {
            break;
        }
        state.extend(batch.iter().cloned());
        completed += 1;
        if file.wants_compaction() {
            let _ = file.compact(&snapshot_of(&state));
        }
    }
    (fs, completed)
}

/// Every (cut, tail) whose load is neither the state before the batch in flight nor a state
/// after some of its records, or that loses the appends made after the load.
fn violations(ignores: Ignore) -> Vec<(usize, Tail, String)> {
    let batches = batches();
    let total_calls = {
        let (fs, completed) = run_until_cut(ignores, &batches, usize::MAX / 2);
        assert_eq!(completed, batches.len());
        fs.calls()
    };
    let longest_frame = batches.iter().map(|b| b.iter().map(|r| RECORD_HEAD + r.len()).sum::<usize>()).max().unwrap();
    let mut bad = Vec::new();
    for cut in 0..=total_calls {
        let (fs, completed) = run_until_cut(ignores, &batches, cut);
        for tail in Tail::all(longest_frame) {
            let done: Vec<String> = batches[..completed].concat();
            let in_flight = batches.get(completed).cloned().unwrap_or_default();
            let restored = Arc::new(fs.after_power_cut(tail));
            let loaded = match open(&restored) {
                Ok((mut file, loaded)) => {
                    let state = state_of(&loaded);
                    let again = file.write(&frame(b"after").unwrap()).and_then(|()| {
                        open(&Arc::new(restored.after_power_cut(Tail::Lost))).map(|(_, l)| state_of(&l))
                    });
                    let mut expected = state.clone();
                    expected.push("after".into());
                    if again.as_ref() != Ok(&expected) {
                        bad.push((cut, tail, format!("append after the load lost: {again:?}")));
                    }
                    state
                }
                Err(e) => {
                    bad.push((cut, tail, format!("open failed: {e}")));
                    continue;
                }
            };
            let acceptable = (0..=in_flight.len()).any(|k| [&done[..], &in_flight[..k]].concat() == loaded);
            if !acceptable {
                bad.push((cut, tail, format!("loaded {loaded:?} after {completed} batches")));
            }
        }
    }
    bad
}

#[test]
fn every_power_cut_of_an_append_or_a_compaction_loads_the_old_or_the_new_state() {
    let bad = violations(Ignore::Nothing);
    assert!(bad.is_empty(), "{} violations, first {:?}", bad.len(), bad.first());
}

#[test]
fn dropping_the_journal_fdatasync_is_caught() {
    assert!(!violations(Ignore::FileSync).is_empty());
}

#[test]
fn dropping_the_directory_fsync_is_caught() {
    assert!(!violations(Ignore::DirSync).is_empty());
}

#[test]
fn compaction_happens_and_a_stale_journal_is_ignored() {
    let fs = Arc::new(SimFs::new(Ignore::Nothing));
    let (mut file, loaded) = open(&fs).unwrap();
    assert!(loaded.snapshot.is_none() && loaded.records.is_empty());
    let mut state = Vec::new();
    for i in 0..20 {
        let record = format!("r{i}");
        file.write(&frame(record.as_bytes()).unwrap()).unwrap();
        state.push(record);
        if file.wants_compaction() {
            file.compact(&snapshot_of(&state)).unwrap();
        }
    }
    assert!(file.epoch >= 2, "compacted more than once: epoch {}", file.epoch);
    // A compaction cut between its snapshot and its fresh journal: the old journal is stale.
    let stale = file.fs().read(&file.path).unwrap().unwrap();
    file.writer.write(&names().snapshot, &snapshot_of(&state)).unwrap();
    let (reopened, loaded) = open(&Arc::new(fs.after_power_cut(Tail::Lost))).unwrap();
    assert_eq!(state_of(&loaded), state);
    assert_ne!(reopened.fs().read(&reopened.path).unwrap().unwrap(), stale, "a fresh journal replaced it");
}

#[test]
fn a_torn_tail_is_cut_off_and_garbage_in_the_header_is_refused() {
    let fs = Arc::new(SimFs::new(Ignore::Nothing));
    let (mut file, _) = open(&fs).unwrap();
    file.write(&frame(b"kept").unwrap()).unwrap();
    let path = file.path.clone();
    file.fs().append(&path, &[&frame(b"torn").unwrap()[..9], &[0; 5]].concat()).unwrap();
    let (file, loaded) = open(&fs).unwrap();
    assert_eq!((state_of(&loaded), loaded.torn_bytes), (vec!["kept".to_string()], 14));
    assert_eq!(file.fs().read(&path).unwrap().unwrap().len(), HEADER_LEN + RECORD_HEAD + 4, "truncated");

    drop(file);
    fs.remove(&path).unwrap();
    fs.create_new(&path, b"not a journal at all", &path).unwrap();
    let err = open(&fs).err().unwrap();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(frame(&[]).is_err() && frame(&vec![1; MAX_RECORD + 1]).is_err());
}

#[test]
fn a_record_whose_write_failed_is_cut_before_the_next() {
    let fs = Arc::new(SimFs::new(Ignore::Nothing));
    let (mut file, _) = open(&fs).unwrap();
    file.write(&frame(b"first").unwrap()).unwrap();
    fs.cut_power_after(1);
    assert!(file.write(&frame(b"failed").unwrap()).is_err(), "written, but its fdatasync failed");
    fs.restore_power();
    file.write(&frame(b"next").unwrap()).unwrap();
    let (_, loaded) = open(&Arc::new(fs.after_power_cut(Tail::Lost))).unwrap();
    assert_eq!(state_of(&loaded), ["first", "next"]);
}

#[tokio::test]
async fn concurrent_appends_share_one_fdatasync() {
    const APPENDS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(CountingFs::new(crate::storage::fs::RealFs));
    let storage = Storage::start(counting.clone()).unwrap();
    let applied = Arc::new(Mutex::new(Vec::new()));
    let seen = applied.clone();
    let snapshot: Snapshot = Box::new(move || snapshot_of(&seen.lock().unwrap()));
    let (journal, _) = Journal::open(&storage, dir.path(), names(), |_| true, snapshot).await.unwrap();

    // Hold the worker while every append queues up, as a slow fsync would.
    let release = storage.hold();
    let before = counting.counts();
    let appends: Vec<_> = (0..APPENDS)
        .map(|i| {
            let (journal, applied) = (journal.clone(), applied.clone());
            tokio::spawn(async move {
                let record = format!("r{i}");
                let kept = record.clone();
                journal.append(record.as_bytes(), move || applied.lock().unwrap().push(kept)).await
            })
        })
        .collect();
    while journal.shared.queue().waiting.len() < APPENDS {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    for append in appends {
        append.await.unwrap().unwrap();
    }
    let syncs = counting.counts().syncs - before.syncs;
    assert_eq!(syncs, 1, "{APPENDS} appends, one fdatasync");
    assert_eq!(applied.lock().unwrap().len(), APPENDS, "each applied once durable");

    drop(journal);
    let fs: Arc<dyn Fs> = counting;
    let writer = AtomicWriter::with_fs(dir.path(), fs, Remount::never());
    let (_, loaded) = JournalFile::open(writer, names(), &|_| true, COMPACT_AFTER_BYTES).unwrap();
    assert_eq!(loaded.records.len(), APPENDS);
}
