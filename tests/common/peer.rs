//! Raw peers from chosen loopback addresses (127.0.0.x), for the exhaustion scenarios: TCP from an
//! address, the RTMP client handshake, waiting for the server to close, and the daemon's memory.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A blocking TCP connection to `to` from the local address `from`.
pub fn tcp_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tcp = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        socket.connect(to).await
    })?;
    let tcp = tcp.into_std()?;
    tcp.set_nonblocking(false)?;
    Ok(tcp)
}

/// `127.0.0.<n>`.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Completes a plain RTMP handshake as a client; Err when the server closes instead.
pub fn rtmp_handshake(tcp: &mut TcpStream) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| (i * 7 % 251) as u8));
    c0c1[5..9].copy_from_slice(&[0, 0, 0, 0]);
    tcp.write_all(&c0c1)?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    tcp.read_exact(&mut s0s1s2)?;
    tcp.write_all(&s0s1s2[1..1537])
}

/// Reads (and drops) what the server sends until it closes; false if it is still open after `limit`.
pub fn closed_within(tcp: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match tcp.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => return true,
            Err(_) => return false,
        }
    }
}

/// The resident memory of process `pid`, in KiB (VmRSS of /proc/<pid>/status).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
