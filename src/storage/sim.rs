//! A simulated file system for the crash tests of the writer and the journal: at a power cut it
//! loses whatever was not made durable. Unsynced file data is lost or, for bytes appended past
//! what was synced, torn in one of the ways a disk tears it ([`Tail`]); directory changes not
//! followed by an fsync of the directory are lost.

use super::fs::Fs;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

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

/// Which sync the simulated disk ignores, to prove that a crash test can fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ignore {
    /// None: the disk keeps every promise.
    Nothing,
    /// fsync and fdatasync of files.
    FileSync,
    /// fsync of directories.
    DirSync,
}

/// What a power cut leaves of the bytes written past a file's durable content.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tail {
    /// Nothing of them.
    Lost,
    /// Their first `n` bytes (all of them when fewer).
    Prefix(usize),
    /// As many zeros (the length reached the disk, the data did not).
    Zeros,
    /// As many bytes of garbage.
    Garbage,
}

impl Tail {
    /// Every kind of tail, with prefixes of 1 to `longest` bytes.
    pub fn all(longest: usize) -> Vec<Tail> {
        let mut tails = vec![Tail::Lost, Tail::Zeros, Tail::Garbage];
        tails.extend((1..=longest).map(Tail::Prefix));
        tails
    }

    fn of(self, unsynced: &[u8]) -> Vec<u8> {
        match self {
            Tail::Lost => Vec::new(),
            Tail::Prefix(n) => unsynced.get(..n).unwrap_or(unsynced).to_vec(),
            Tail::Zeros => vec![0; unsynced.len()],
            Tail::Garbage => (0..unsynced.len()).map(|i| (i as u8).wrapping_mul(151).wrapping_add(7)).collect(),
        }
    }
}

/// The simulated disk.
pub struct SimFs {
    state: Mutex<State>,
    ignores: Ignore,
}

impl SimFs {
    /// An empty disk that ignores `ignores`.
    pub fn new(ignores: Ignore) -> Self {
        SimFs { state: Mutex::new(State::default()), ignores }
    }

    /// Cuts the power after `calls` more calls: every later call fails.
    pub fn cut_power_after(&self, calls: usize) {
        let mut state = self.state.lock().unwrap();
        state.power_cut_after = Some(state.calls + calls);
    }

    /// Ends a failure that [`SimFs::cut_power_after`] started, as if the disk had answered
    /// again (an I/O error that passed), keeping what was written.
    pub fn restore_power(&self) {
        self.state.lock().unwrap().power_cut_after = None;
    }

    /// The calls made so far.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
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

    /// The disk as it is after the power comes back: what was durable, and of the bytes written
    /// past it, `tail`.
    pub fn after_power_cut(&self, tail: Tail) -> SimFs {
        let state = self.state.lock().unwrap();
        let inodes = state
            .inodes
            .iter()
            .map(|inode| {
                let mut data = inode.durable.clone().unwrap_or_default();
                if let Some(unsynced) = inode.volatile.strip_prefix(data.as_slice()) {
                    data.extend(tail.of(unsynced));
                }
                Inode { volatile: data.clone(), durable: Some(data) }
            })
            .collect();
        let dir = state.durable_dir.clone();
        let restored = State { inodes, volatile_dir: dir.clone(), durable_dir: dir, calls: 0, power_cut_after: None };
        SimFs { state: Mutex::new(restored), ignores: self.ignores }
    }

    fn inode<'s>(s: &'s mut State, path: &Path) -> io::Result<&'s mut Inode> {
        let inode = *s.volatile_dir.get(&Self::name(path)).ok_or(io::ErrorKind::NotFound)?;
        s.inodes.get_mut(inode).ok_or(io::ErrorKind::NotFound.into())
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
        let ignored = self.ignores == Ignore::FileSync;
        self.call(|s| {
            let inode = Self::inode(s, path)?;
            if !ignored {
                inode.durable = Some(inode.volatile.clone());
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
        let ignored = self.ignores == Ignore::DirSync;
        self.call(|s| {
            if !ignored {
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
    fn append(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.call(|s| {
            Self::inode(s, path)?.volatile.extend_from_slice(bytes);
            Ok(())
        })
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.sync_file(path)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.call(|s| {
            let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            Self::inode(s, path)?.volatile.resize(len, 0);
            Ok(())
        })
    }
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(()) // one flat directory
    }
}
