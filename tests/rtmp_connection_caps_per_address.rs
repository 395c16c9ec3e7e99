//! Eight addresses (127.0.0.2..=9) open ten RTMP connections each, finish the handshake and then
//! only send acknowledgements. Each address gets at most rtmp.maxConnectionsPerAddress of them,
//! every one is closed at rtmp.admissionTimeout although it keeps sending, and a publisher and a
//! player on 127.0.0.1 are served throughout (before, the attackers held every slot).

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::peer::{loopback, rtmp_handshake, tcp_from};
use rampart::rtmp::chunks::chunk_message;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ADDRESSES: u8 = 8;
const TRIES: usize = 10;
const PER_ADDRESS: usize = 4;

/// Sends an acknowledgement every 300 ms until the server closes; returns how long that took.
fn acknowledge_until_closed(mut tcp: TcpStream, started: Instant) -> Option<Duration> {
    tcp.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let mut buffer = [0u8; 4096];
    for sequence in 0u32.. {
        if started.elapsed() > Duration::from_secs(20) {
            return None;
        }
        if tcp.write_all(&chunk_message(2, 3, 0, 0, &sequence.to_be_bytes(), 128)).is_err() {
            return Some(started.elapsed());
        }
        match tcp.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                return Some(started.elapsed());
            }
            _ => {}
        }
    }
    None
}

#[test]
fn one_address_holds_few_rtmp_slots_and_only_until_the_admission_deadline() {
    let daemon = InProcess::start(
        &format!("rtmp.maxConnections=40\nrtmp.maxConnectionsPerAddress={PER_ADDRESS}\nrtmp.admissionTimeout=3\n"),
        "",
    );
    let addr = daemon.addr("RTMP");
    let started = Instant::now();
    let mut held = Vec::new();
    for n in 0..ADDRESSES {
        let mut taken = 0;
        for _ in 0..TRIES {
            let mut tcp = tcp_from(loopback(2 + n), addr).expect("connect");
            if rtmp_handshake(&mut tcp).is_ok() {
                taken += 1;
                held.push(std::thread::spawn(move || acknowledge_until_closed(tcp, started)));
            }
        }
        assert_eq!(taken, PER_ADDRESS, "127.0.0.{} got {taken} of its {TRIES} connections", 2 + n);
    }

    // With every attacker connected, a legitimate publisher and player are served.
    let _publisher = publish(&daemon.url("legit"), 60);
    daemon.wait_live("legit", 0);
    let reader = Reader::start(&daemon.url("legit"), 60, &[]);
    reader.wait_frames(10);

    for attacker in held {
        let closed = attacker.join().expect("attacker").expect("an acknowledging peer is closed");
        assert!(closed < Duration::from_secs(9), "closed after {closed:?}, not at rtmp.admissionTimeout=3");
    }
    let frames = reader.frames();
    reader.wait_frames(frames + 30);
    assert_eq!(daemon.services.hub.live_streams().len(), 1, "the publisher was not disturbed");
}
