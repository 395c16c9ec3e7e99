//! The writer against a simulated file system that loses, at a power cut, whatever was not made
//! durable: unsynced file data (a file whose data never reached the disk reads back empty, as on
//! ext4) and directory changes not followed by an fsync of the directory. For every call k of a
//! write (and of a sequence of writes), a cut after call k leaves the old or the new content, and
//! the new one once the write has returned.

use super::*;
use std::collections::BTreeMap;

#[derive(Clone, Default)]
struct Inode {
    volatile: Vec<u8>,
    durable: Option<Vec<u8>>,
}

#[derive(Clone, Default)]
struct State {
    inodes: Vec<Inode>,
    volatile_dir: BTreeMap<String, usize>,
    durable_dir: BTreeMap<String, usize>,
    calls: usize,
    power_cut_after: Option<usize>,
}

/// Which fsync the simulated disk ignores, to prove the crash test can fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drop {
    Nothing,
    FileSync,
    DirSync,
}

struct SimFs {
    state: Mutex<State>,
    drops: Drop,
}

impl SimFs {
    fn new(drops: Drop) -> Self {
        SimFs { state: Mutex::new(State::default()), drops }
    }

    fn name(path: &Path) -> String {
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Counts a call; once the power is cut, every call fails.
    fn call<T>(&self, op: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock().unwrap();
        if state.power_cut_after.is_some_and(|cut| state.calls >= cut) {
            return Err(io::Error::other("power cut"));
        }
        state.calls += 1;
        op(&mut state)
    }

    /// The disk as it is after the power comes back: only what was durable.
    fn after_power_cut(&self) -> SimFs {
        let state = self.state.lock().unwrap();
        let inodes = state
            .inodes
            .iter()
            .map(|inode| {
                let data = inode.durable.clone().unwrap_or_default();
                Inode { volatile: data.clone(), durable: Some(data) }
            })
            .collect();
        let dir = state.durable_dir.clone();
        let restored = State { inodes, volatile_dir: dir.clone(), durable_dir: dir, calls: 0, power_cut_after: None };
        SimFs { state: Mutex::new(restored), drops: self.drops }
    }
}

impl Fs for SimFs {
    fn create_new(&self, path: &Path, bytes: &[u8], _like: &Path) -> io::Result<()> {
        self.call(|s| {
            let name = Self::name(path);
            if s.volatile_dir.contains_key(&name) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            s.inodes.push(Inode { volatile: bytes.to_vec(), durable: None });
            s.volatile_dir.insert(name, s.inodes.len() - 1);
            Ok(())
        })
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let drops = self.drops;
        self.call(|s| {
            let inode = *s.volatile_dir.get(&Self::name(path)).ok_or(io::ErrorKind::NotFound)?;
            if drops != Drop::FileSync {
                s.inodes[inode].durable = Some(s.inodes[inode].volatile.clone());
            }
            Ok(())
        })
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(|s| {
            let inode = s.volatile_dir.remove(&Self::name(from)).ok_or(io::ErrorKind::NotFound)?;
            s.volatile_dir.insert(Self::name(to), inode);
            Ok(())
        })
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let drops = self.drops;
        self.call(|s| {
            if drops != Drop::DirSync {
                s.durable_dir = s.volatile_dir.clone();
            }
            Ok(())
        })
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.call(|s| s.volatile_dir.remove(&Self::name(path)).map(drop).ok_or(io::ErrorKind::NotFound.into()))
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.call(|s| Ok(s.volatile_dir.get(&Self::name(path)).map(|i| s.inodes[*i].volatile.clone())))
    }
    fn list(&self, _dir: &Path) -> io::Result<Vec<String>> {
        self.call(|s| Ok(s.volatile_dir.keys().cloned().collect()))
    }
}

fn writer(fs: SimFs) -> AtomicWriter<SimFs> {
    AtomicWriter::with_fs(Path::new("/etc/rampart"), fs, Remount::never())
}

/// Writes `versions` one after the other, cutting the power after call `cut` (counted from the
/// first write), then loads the file after the power comes back.
fn cut_during(drops: Drop, versions: &[&str], cut: usize) -> (Option<Vec<u8>>, usize) {
    let w = writer(SimFs::new(drops));
    w.fs.state.lock().unwrap().power_cut_after = Some(cut);
    let mut completed = 0;
    for version in versions {
        if w.write("server.properties", version.as_bytes()).is_err() {
            break;
        }
        completed += 1;
    }
    let after = writer(w.fs.after_power_cut());
    let loaded = after.load("server.properties", &any).expect("load never fails on the simulated disk");
    (loaded.map(|f| f.body().to_vec()), completed)
}

/// Every power cut during the writes of `versions` leaves the last completed version or the
/// one being written; returns the cuts that did not.
fn violations(drops: Drop, versions: &[&str]) -> Vec<(usize, Option<String>)> {
    let total_calls = {
        let w = writer(SimFs::new(drops));
        versions.iter().for_each(|v| drop(w.write("server.properties", v.as_bytes())));
        w.fs.state.lock().unwrap().calls
    };
    let mut bad = Vec::new();
    for cut in 0..=total_calls {
        let (loaded, completed) = cut_during(drops, versions, cut);
        let loaded_text = loaded.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let last_completed = completed.checked_sub(1).map(|i| versions[i]);
        let in_flight = versions.get(completed).copied();
        let acceptable = [last_completed, in_flight].contains(&loaded_text.as_deref());
        if !acceptable {
            bad.push((cut, loaded_text));
        }
    }
    bad
}

const VERSIONS: [&str; 3] = ["logLevel=INFO\n", "# comment\nlogLevel=WARN\nrtmp.port=1935\n", "logLevel=DEBUG\n"];

#[test]
fn every_power_cut_leaves_the_old_or_the_new_file() {
    assert_eq!(violations(Drop::Nothing, &VERSIONS[..1]), vec![], "first write");
    assert_eq!(violations(Drop::Nothing, &VERSIONS), vec![], "a sequence of writes");
}

#[test]
fn dropping_the_file_fsync_is_caught() {
    assert!(!violations(Drop::FileSync, &VERSIONS).is_empty());
}

#[test]
fn dropping_the_directory_fsync_is_caught() {
    assert!(!violations(Drop::DirSync, &VERSIONS).is_empty());
}

#[test]
fn generations_count_up_and_stale_temps_go() {
    let w = writer(SimFs::new(Drop::Nothing));
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
    let w = writer(SimFs::new(Drop::Nothing));
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
