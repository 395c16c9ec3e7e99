//! The atomic writer on a real read-only mount, in a private mount namespace (`unshare -m`, as
//! root): a write succeeds and leaves the mount read-only again, and so does a write that fails
//! half-way.

mod common;

use rampart::storage::mount::is_read_only;
use rampart::storage::writer::{AtomicWriter, Provenance};
use std::path::Path;

const CHILD: &str = "RAMPART_REMOUNT_CHILD";

#[test]
fn writes_on_a_read_only_mount_and_leaves_it_read_only() {
    if let Some(dir) = std::env::var_os(CHILD) {
        return in_private_namespace(Path::new(&dir));
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: mounting needs root (tests/run.sh runs as root)");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let inner = common::command_for(&exe);
    let mut command = std::process::Command::new("unshare");
    command.args(["--mount", "--propagation", "private"]).arg(inner.get_program()).args(inner.get_args());
    let out = command
        .args(["--exact", "writes_on_a_read_only_mount_and_leaves_it_read_only", "--nocapture"])
        .env(CHILD, scratch.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("remount checks passed"), "{text}");
}

/// Runs inside the private namespace: mounts a read-only tmpfs and writes to it.
fn in_private_namespace(scratch: &Path) {
    use nix::mount::{MsFlags, mount};
    let dir = scratch.join("etc-rampart");
    std::fs::create_dir_all(&dir).unwrap();
    mount(Some("tmpfs"), &dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("size=1m")).unwrap();
    // A directory where the writer's temporary file must go makes one write fail half-way.
    std::fs::create_dir(dir.join(".broken.properties.tmp")).unwrap();
    std::fs::create_dir(dir.join(".broken.properties.tmp").join("x")).unwrap();
    let remount_ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(None::<&str>, &dir, None::<&str>, remount_ro, None::<&str>).unwrap();
    assert!(is_read_only(&dir));
    assert!(std::fs::write(dir.join("direct.properties"), "x=1").is_err(), "the mount really is read-only");

    let writer = AtomicWriter::new(&dir);
    assert_eq!(writer.write("server.properties", b"logLevel=WARN\n").unwrap(), 1);
    assert!(is_read_only(&dir), "read-only again after a write");
    let loaded = writer.load("server.properties", &|_| true).unwrap().unwrap();
    assert_eq!((loaded.body(), loaded.provenance), (&b"logLevel=WARN\n"[..], Provenance::Verified));

    assert!(writer.write("broken.properties", b"x=1\n").is_err(), "the write fails half-way");
    assert!(is_read_only(&dir), "read-only again after a failed write");
    let flags = nix::sys::statvfs::statvfs(&dir).unwrap().flags();
    assert!(flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID), "other mount flags kept");
    println!("remount checks passed");
}
