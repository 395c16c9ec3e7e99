//! Debian's swtpm on 127.0.0.1, started on free ports with a state directory of its own (or a
//! given one), killed on drop. Its command port is in `swtpm:HOST:PORT` form for
//! `secrets.tpmDevice`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long swtpm may take to listen.
const START_BOUND: Duration = Duration::from_secs(20);

/// A running swtpm.
pub struct Swtpm {
    child: Child,
    port: u16,
    state: PathBuf,
    _own_state: Option<tempfile::TempDir>,
}

impl Swtpm {
    /// A swtpm with a fresh state: a new TPM, with seeds of its own.
    pub fn fresh() -> Swtpm {
        let dir = tempfile::tempdir().expect("swtpm state dir");
        let state = dir.path().to_path_buf();
        let mut swtpm = Swtpm::on(&state);
        swtpm._own_state = Some(dir);
        swtpm
    }

    /// A swtpm keeping its state in `state` (the same TPM as before when it is the same dir).
    pub fn on(state: &Path) -> Swtpm {
        let (child, port) = start(state, None);
        Swtpm { child, port, state: state.to_path_buf(), _own_state: None }
    }

    /// `secrets.tpmDevice` for this swtpm: `swtpm:127.0.0.1:PORT`.
    pub fn device(&self) -> String {
        format!("swtpm:127.0.0.1:{}", self.port)
    }

    /// Stops swtpm and starts it again on the same state (the TPM is power-cycled: PCRs reset).
    /// The port may change: read [`Swtpm::device`] again.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        (self.child, self.port) = start(&self.state, Some(self.port));
    }

    /// Extends SHA-256 PCR `pcr` with a measurement, through tpm2-tools.
    pub fn extend_pcr(&self, pcr: u8) {
        let digest = "ab".repeat(32);
        let status = Command::new("tpm2_pcrextend")
            .arg(format!("{pcr}:sha256={digest}"))
            .env("TPM2TOOLS_TCTI", format!("swtpm:host=127.0.0.1,port={}", self.port))
            .stdout(Stdio::null())
            .status()
            .expect("tpm2_pcrextend (Debian's tpm2-tools)");
        assert!(status.success(), "tpm2_pcrextend failed");
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// swtpm on `state`, on `port` when it is free again, else on free ports.
fn start(state: &Path, port: Option<u16>) -> (Child, u16) {
    for port in port.into_iter().chain(std::iter::repeat_with(free_port_pair).take(20)) {
        if let Some(child) = spawn(state, port) {
            return (child, port);
        }
    }
    panic!("swtpm did not start on any free port");
}

/// A port P with P+1 free too, as swtpm's command and control ports.
fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
}

/// swtpm on `port` and `port + 1`, once its command port accepts; `None` if it exits first
/// (a port taken meanwhile).
fn spawn(state: &Path, port: u16) -> Option<Child> {
    let mut child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--server"])
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("swtpm (Debian's swtpm package)");
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_BOUND;
    while Instant::now() < deadline {
        if child.try_wait().expect("swtpm status").is_some() {
            return None;
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&mut child);
    panic!("swtpm did not listen on {address} within {START_BOUND:?}");
}
