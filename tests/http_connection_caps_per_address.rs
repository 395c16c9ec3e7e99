//! Ten addresses outside the dashboard CIDR (127.0.0.2..=11) open six HTTP connections each and
//! trickle one header line every 300 ms. Each address holds at most http.maxConnectionsPerAddress
//! of them, all of them together no more than the slots left outside
//! http.dashboardReservedConnections, each is cut at http.requestHeadTimeout, and the panel
//! answers 127.0.0.1 (inside the CIDR) throughout (before, the trickle kept every slot full).

mod common;

use common::daemon::InProcess;
use common::peer::{closed_within, loopback, tcp_from};
use common::rest::Rest;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const ADDRESSES: u8 = 10;
const TRIES: usize = 6;
const PER_ADDRESS: usize = 4;
const TOTAL: usize = 30;
const RESERVED: usize = 10;
const HEAD_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens a connection and trickles a request head until the server closes it; returns how long
/// the server kept it.
fn trickle(from: u8, addr: SocketAddr, connected: Arc<Barrier>) -> Duration {
    let mut tcp: TcpStream = tcp_from(loopback(from), addr).expect("connect");
    let started = Instant::now();
    let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: box\r\n");
    connected.wait();
    loop {
        if closed_within(&mut tcp, Duration::from_millis(300)) || tcp.write_all(b"X-Slow: 1\r\n").is_err() {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "a trickling connection is never cut");
    }
}

#[test]
fn one_address_holds_few_http_slots_and_the_dashboard_keeps_its_own() {
    let daemon = InProcess::start(
        &format!(
            "server.allowed_dashboard_CIDR=127.0.0.1\nhttp.maxConnections={TOTAL}\n\
             http.maxConnectionsPerAddress={PER_ADDRESS}\nhttp.dashboardReservedConnections={RESERVED}\n\
             http.requestHeadTimeout={}\n",
            HEAD_TIMEOUT.as_secs()
        ),
        "",
    );
    let addr = daemon.addr("HTTP");
    let connected = Arc::new(Barrier::new(usize::from(ADDRESSES) * TRIES + 1));
    let attackers: Vec<_> = (0..ADDRESSES)
        .flat_map(|n| (0..TRIES).map(move |_| n))
        .map(|n| {
            let connected = connected.clone();
            (n, std::thread::spawn(move || trickle(2 + n, addr, connected)))
        })
        .collect();
    connected.wait();

    // Every attacker has connected and is trickling: the panel answers its own network.
    let panel = Rest::new(addr);
    for _ in 0..3 {
        assert_eq!(panel.get("/").status, 200, "the panel answers 127.0.0.1");
    }

    let mut held = vec![0usize; usize::from(ADDRESSES)];
    for (n, attacker) in attackers {
        let kept = attacker.join().expect("attacker");
        assert!(kept < HEAD_TIMEOUT + Duration::from_secs(3), "a trickled head kept its slot {kept:?}");
        // A refused connection is closed at accept; a held one at the head timeout.
        if kept >= HEAD_TIMEOUT - Duration::from_millis(500) {
            held[usize::from(n)] += 1;
        }
    }
    eprintln!("HTTP slots held per attacking address: {held:?}");
    assert!(held.iter().all(|h| *h <= PER_ADDRESS), "slots held per address: {held:?}");
    let total: usize = held.iter().sum();
    assert!(total <= TOTAL - RESERVED, "{total} slots held outside the dashboard CIDR: {held:?}");
    assert!(total > 0, "the attack was served at all: {held:?}");
}
