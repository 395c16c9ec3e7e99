//! The writer against a simulated file system ([`crate::storage::sim`]) that loses, at a power
//! cut, whatever was not made durable: unsynced file data (a file whose data never reached the
//! disk reads back empty, zero-filled or torn) and directory changes not followed by an fsync of
//! the directory. For every call k of a write (and of a sequence of writes), a cut after call k
//! leaves the old or the new content, and the new one once the write has returned.

use super::*;
use crate::storage::sim::{Ignore, SimFs, Tail};

fn writer(fs: SimFs) -> AtomicWriter<SimFs> {
    AtomicWriter::with_fs(Path::new("/etc/rampart"), fs, Remount::never())
}

/// Writes `versions` one after the other, cutting the power after call `cut` (counted from the
/// first write), then loads the file after the power comes back.
fn cut_during(ignores: Ignore, tail: Tail, versions: &[&str], cut: usize) -> (Option<Vec<u8>>, usize) {
    let w = writer(SimFs::new(ignores));
    w.fs.cut_power_after(cut);
    let mut completed = 0;
    for version in versions {
        if w.write("server.properties", version.as_bytes()).is_err() {
            break;
        }
        completed += 1;
    }
    let after = writer(w.fs.after_power_cut(tail));
    let loaded = after.load("server.properties", &any).expect("load never fails on the simulated disk");
    (loaded.map(|f| f.body().to_vec()), completed)
}

/// Every power cut during the writes of `versions`, whatever it leaves of unsynced data, leaves
/// the last completed version or the one being written; returns the cuts that did not.
fn violations(ignores: Ignore, versions: &[&str]) -> Vec<(usize, Tail, Option<String>)> {
    let total_calls = {
        let w = writer(SimFs::new(ignores));
        versions.iter().for_each(|v| drop(w.write("server.properties", v.as_bytes())));
        w.fs.calls()
    };
    let mut bad = Vec::new();
    for (cut, tail) in (0..=total_calls).flat_map(|cut| Tail::all(8).into_iter().map(move |tail| (cut, tail))) {
        let (loaded, completed) = cut_during(ignores, tail, versions, cut);
        let loaded_text = loaded.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let last_completed = completed.checked_sub(1).map(|i| versions[i]);
        let in_flight = versions.get(completed).copied();
        let acceptable = [last_completed, in_flight].contains(&loaded_text.as_deref());
        if !acceptable {
            bad.push((cut, tail, loaded_text));
        }
    }
    bad
}

const VERSIONS: [&str; 3] = ["logLevel=INFO\n", "# comment\nlogLevel=WARN\nrtmp.port=1935\n", "logLevel=DEBUG\n"];

#[test]
fn every_power_cut_leaves_the_old_or_the_new_file() {
    assert_eq!(violations(Ignore::Nothing, &VERSIONS[..1]), vec![], "first write");
    assert_eq!(violations(Ignore::Nothing, &VERSIONS), vec![], "a sequence of writes");
}

#[test]
fn dropping_the_file_fsync_is_caught() {
    assert!(!violations(Ignore::FileSync, &VERSIONS).is_empty());
}

#[test]
fn dropping_the_directory_fsync_is_caught() {
    assert!(!violations(Ignore::DirSync, &VERSIONS).is_empty());
}

#[test]
fn generations_count_up_and_stale_temps_go() {
    let w = writer(SimFs::new(Ignore::Nothing));
    assert_eq!(w.write("a.properties", b"x=1\n").unwrap(), 1);
    assert_eq!(w.write("a.properties", b"x=2\n").unwrap(), 2);
    w.fs.create_new(Path::new("/etc/rampart/.a.properties.tmp"), b"half", Path::new("/none")).unwrap();
    assert_eq!(w.remove_stale_temps().unwrap(), 1);
    assert_eq!(w.remove_stale_temps().unwrap(), 0);
    let loaded = w.load("a.properties", &any).unwrap().unwrap();
    assert_eq!((loaded.body(), loaded.generation, loaded.provenance), (&b"x=2\n"[..], 2, Provenance::Verified));
}

/// Accepts any body.
fn any(_: &[u8]) -> bool {
    true
}

#[test]
fn hand_edits_load_as_written_and_only_empty_nul_or_unparsable_files_are_torn() {
    let w = writer(SimFs::new(Ignore::Nothing));
    w.write("a.properties", b"x=1\ny=2\n").unwrap();
    let path = Path::new("/etc/rampart/a.properties");
    let framed = w.fs.read(path).unwrap().unwrap();
    let put = |bytes: &[u8]| {
        let _ = w.fs.remove(path);
        w.fs.create_new(path, bytes, path).unwrap();
    };

    let edited = String::from_utf8(framed.clone()).unwrap().replace("x=1", "x=10");
    put(edited.as_bytes());
    let loaded = w.load("a.properties", &any).unwrap().unwrap();
    assert_eq!((loaded.provenance, loaded.body()), (Provenance::EditedByHand, &b"x=10\ny=2\n"[..]));

    // A line deleted by hand makes the file shorter than its header says: still the user's edit.
    put(&framed[..framed.len() - 4]);
    let loaded = w.load("a.properties", &any).unwrap().unwrap();
    assert_eq!((loaded.provenance, loaded.body()), (Provenance::EditedByHand, &b"x=1\n"[..]));
    let header_only = &framed[..framed.iter().position(|b| *b == b'\n').unwrap()];
    assert_eq!(unframe(header_only).map(|f| f.provenance), Some(Provenance::EditedByHand));

    for torn in [&b""[..], &[0u8; 64][..], &[framed.as_slice(), &[0; 16]].concat()[..]] {
        put(torn);
        let loaded = w.load("a.properties", &any).unwrap().unwrap();
        assert_eq!((loaded.provenance, loaded.body()), (Provenance::LastGoodCopy, &b"x=1\ny=2\n"[..]), "{torn:?}");
    }
    put(b"x=1\ny=2\n");
    let loaded = w.load("a.properties", &|body| !body.starts_with(b"x=1")).unwrap().unwrap();
    assert_eq!(loaded.provenance, Provenance::Unframed, "no parsable copy: the file, for its reader to report");
    put(b"{not json");
    let loaded = w.load("a.properties", &|body| body.starts_with(b"x=")).unwrap().unwrap();
    assert_eq!(loaded.provenance, Provenance::LastGoodCopy, "an unparsable file gives way to its good copy");

    put(b"plain=1\n");
    assert_eq!(w.load("a.properties", &any).unwrap().unwrap().provenance, Provenance::Unframed);
    assert_eq!(w.load("missing.properties", &any).unwrap(), None);
}
