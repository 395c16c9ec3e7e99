//! Making the read-only configuration partition writable for the length of one write, and
//! read-only again afterwards whatever happened. Only a directory that is a mount point of its
//! own is ever remounted; elsewhere (a developer machine) the remount is skipped, and the log
//! says so once.

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Tries of a remount that the kernel answers with EBUSY.
const BUSY_TRIES: u32 = 6;

/// What a write does about the mount of its directory.
#[derive(Debug, Clone)]
pub struct Remount {
    mount_point: Option<PathBuf>,
    stuck_writable: Arc<AtomicBool>,
}

impl Remount {
    /// For `dir`: remount it around writes when it is a read-only mount point of its own.
    pub fn for_dir(dir: &Path) -> Self {
        let own_read_only_mount = is_mount_point(dir) && is_read_only(dir);
        if !own_read_only_mount {
            log::info!(
                "{} is not a read-only mount of its own: files are written in place, without remounting",
                dir.display()
            );
        }
        Remount { mount_point: own_read_only_mount.then(|| dir.to_path_buf()), stuck_writable: Arc::default() }
    }

    /// Never remounts (tests, and directories that are always writable).
    pub fn never() -> Self {
        Remount { mount_point: None, stuck_writable: Arc::default() }
    }

    /// True when a remount back to read-only failed: the partition is writable now.
    pub fn stuck_writable(&self) -> bool {
        self.stuck_writable.load(Ordering::Relaxed)
    }

    /// Makes the partition writable until the guard is dropped.
    pub fn writable(&self) -> Result<RemountGuard, (PathBuf, io::Error)> {
        let Some(mount_point) = &self.mount_point else {
            return Ok(RemountGuard { restore: None, stuck_writable: self.stuck_writable.clone() });
        };
        let flags = kept_flags(mount_point).map_err(|e| (mount_point.clone(), e))?;
        remount(mount_point, flags).map_err(|e| (mount_point.clone(), e))?;
        Ok(RemountGuard { restore: Some((mount_point.clone(), flags)), stuck_writable: self.stuck_writable.clone() })
    }
}

/// Puts the partition back to read-only when dropped.
pub struct RemountGuard {
    restore: Option<(PathBuf, MsFlags)>,
    stuck_writable: Arc<AtomicBool>,
}

impl Drop for RemountGuard {
    fn drop(&mut self) {
        let Some((mount_point, flags)) = self.restore.take() else { return };
        match remount(&mount_point, flags | MsFlags::MS_RDONLY) {
            Ok(()) => self.stuck_writable.store(false, Ordering::Relaxed),
            Err(e) => {
                self.stuck_writable.store(true, Ordering::Relaxed);
                log::error!("{} could not be remounted read-only and stays WRITABLE: {e}", mount_point.display());
            }
        }
    }
}

/// Remounts with `flags`, retrying with a bounded back-off while the kernel says EBUSY.
fn remount(mount_point: &Path, flags: MsFlags) -> io::Result<()> {
    let mut wait = Duration::from_millis(10);
    for attempt in 1..=BUSY_TRIES {
        match mount(None::<&str>, mount_point, None::<&str>, MsFlags::MS_REMOUNT | flags, None::<&str>) {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) if attempt < BUSY_TRIES => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno::EBUSY.into())
}

/// The mount's flags other than read-only, to keep across the remount. (relatime, the kernel's
/// default, has no statvfs flag on every libc and comes back by itself.)
fn kept_flags(mount_point: &Path) -> io::Result<MsFlags> {
    let flags = statvfs(mount_point)?.flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ];
    Ok(pairs.iter().filter(|(st, _)| flags.contains(*st)).fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

/// Whether the filesystem holding `dir` is mounted read-only.
pub fn is_read_only(dir: &Path) -> bool {
    statvfs(dir).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

/// Whether `dir` is a mount point (listed in /proc/self/mountinfo).
fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else { return false };
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).any(|point| Path::new(&unescape(point)) == dir)
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}
