//! Helpers shared by the integration tests: configuration directories and the daemon binary.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Runs `future` (a datastore change, say: a job on the storage worker) to its end on this
/// thread, parked while it waits. Needs no runtime, so a `#[tokio::test]` may call it too.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// A temporary configuration directory.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    pub fn new() -> Self {
        ConfigDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A directory whose `server.properties` listens on 127.0.0.1 on ports the system picks,
    /// keeps its data directory inside (`data`), and adds `extra`.
    pub fn loopback(extra: &str) -> Self {
        let dir = ConfigDir::new();
        let data = dir.file("data");
        dir.server(&format!(
            "rtmp.host=127.0.0.1\nrtmp.port=0\nhttp.host=127.0.0.1\nhttp.port=0\ndata.dir={}\n{extra}",
            data.display()
        ))
    }

    /// Writes `server.properties`.
    pub fn server(self, text: &str) -> Self {
        std::fs::write(self.path().join("server.properties"), text).expect("write server.properties");
        self
    }

    /// Writes `apps/<name>.properties`.
    pub fn app(self, name: &str, text: &str) -> Self {
        let apps = self.path().join("apps");
        std::fs::create_dir_all(&apps).expect("apps dir");
        std::fs::write(apps.join(format!("{name}.properties")), text).expect("write app file");
        self
    }

    /// The path of a file in the directory.
    pub fn file(&self, relative: &str) -> PathBuf {
        self.path().join(relative)
    }
}

/// A command that runs the rampart binary, under qemu-user when the test itself runs there.
pub fn rampart() -> Command {
    command_for(Path::new(env!("CARGO_BIN_EXE_rampart")))
}

/// A command that runs `bin`: directly, or under qemu-user when the kernel cannot execute it
/// (a test built for another architecture runs under qemu-user without binfmt_misc, and so must
/// the programs it starts).
pub fn command_for(bin: &Path) -> Command {
    let probe = Command::new(bin).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status();
    match probe {
        Err(e) if e.raw_os_error() == Some(8) => {
            let mut command = Command::new(format!("qemu-{}", std::env::consts::ARCH));
            command.arg(bin);
            command
        }
        _ => Command::new(bin),
    }
}

/// A running daemon whose standard error is read line by line.
pub struct Daemon {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Daemon {
    /// Starts the daemon with these arguments.
    pub fn start(args: &[&str]) -> Self {
        let mut child = rampart()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rampart");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, seen: Vec::new() }
    }

    /// Waits (at most `limit`) for a log line that contains `needle`, and returns it.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {needle:?} within {limit:?}; seen:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the line saying where `protocol` (`RTMP`, `HTTP`, ...) listens, and returns
    /// that address (from a line such as `RTMP  listening on 127.0.0.1:40001: ...`).
    pub fn listening(&mut self, protocol: &str) -> std::net::SocketAddr {
        let line = self.wait_for(&format!("{protocol:<5} listening on"), PATIENCE);
        let after = line.split("listening on ").nth(1).unwrap_or_default();
        after.split(": ").next().and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Every remaining log line, until the daemon closes standard error.
    pub fn rest(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generous limit for the daemon to reach a state (qemu-user is slow).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub mod daemon;
pub mod http_server;
pub mod jwk;
pub mod leaks;
pub mod peer;
pub mod rest;
pub mod sealed;
pub mod security;
pub mod swtpm;
pub mod tls;
