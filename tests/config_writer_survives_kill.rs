//! A child process writes settings in a loop and is SIGKILLed at random moments, many times;
//! after each kill the file loads and is one of the versions written.

mod common;

use rampart::storage::writer::AtomicWriter;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = "RAMPART_WRITER_CHILD";

fn version(n: u64) -> String {
    // Large enough that a write takes a while, so kills land in every phase of it.
    format!("# version {n}\nlogLevel=INFO\nfiller={}\nend={n}\n", "x".repeat(64 * 1024))
}

#[test]
fn a_killed_writer_leaves_a_whole_version() {
    if let Some(dir) = std::env::var_os(CHILD) {
        let writer = AtomicWriter::new(Path::new(&dir));
        writer.remove_stale_temps().unwrap();
        let first = writer.load("server.properties", &|_| true).unwrap().map_or(0, |f| f.generation);
        for n in first + 1.. {
            writer.write("server.properties", version(n).as_bytes()).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..25 {
        let mut child = common::command_for(&exe)
            .args(["--exact", "a_killed_writer_leaves_a_whole_version"])
            .env(CHILD, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The file exists once the first write of this round (or an earlier round) is done.
        common::daemon::wait_for("a first version", || dir.path().join("server.properties").exists());
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 40_000));
        child.kill().unwrap();
        child.wait().unwrap();

        let loaded =
            AtomicWriter::new(dir.path()).load("server.properties", &|_| true).unwrap().expect("a file after the kill");
        let body = String::from_utf8(loaded.body().to_vec()).unwrap();
        assert_eq!(body, version(loaded.generation), "round {round}: a whole version");
    }
}
