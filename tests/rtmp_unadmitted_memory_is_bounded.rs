//! Twenty peers from 127.0.0.2..=21 each finish the RTMP handshake and send all but the last byte
//! of an 8 MiB video message without ever connecting or publishing. They are cut off on the
//! message's header, the daemon's resident memory stays where it was (it grew by 160 MB before),
//! and a publisher and a player on 127.0.0.1 are served throughout.

mod common;

use common::daemon::{Reader, publish};
use common::peer::{closed_within, loopback, rtmp_handshake, tcp_from, vm_rss_kib};
use common::{ConfigDir, Daemon, PATIENCE};
use rampart::rtmp::chunks::chunk_message;
use std::io::Write;
use std::time::Duration;

const ATTACKERS: u8 = 20;
const MESSAGE: usize = 8 * 1024 * 1024;

/// A SetChunkSize to 65536, then an 8 MiB video message without its last byte.
fn almost_a_message() -> Vec<u8> {
    let mut bytes = chunk_message(2, 1, 0, 0, &65_536u32.to_be_bytes(), 128).to_vec();
    let video = chunk_message(4, 9, 1, 0, &vec![0x17; MESSAGE], 65_536);
    bytes.extend_from_slice(&video[..video.len() - 1]);
    bytes
}

#[test]
fn unadmitted_peers_cannot_make_the_daemon_buffer_their_messages() {
    let config = ConfigDir::loopback("");
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let rtmp = daemon.listening("RTMP");
    let url = format!("rtmp://{rtmp}/LiveApp/legit");
    let _publisher = publish(&url, 120);
    daemon.wait_for("allowed publish rtmp LiveApp/legit", PATIENCE);
    let reader = Reader::start(&url, 120, &[]);
    reader.wait_frames(30);
    let pid = daemon.child.id();
    let before = vm_rss_kib(pid);

    let payload = almost_a_message();
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let payload = payload.clone();
            std::thread::spawn(move || {
                let mut tcp = tcp_from(loopback(2 + i), rtmp).expect("connect");
                rtmp_handshake(&mut tcp).expect("handshake");
                // The write fails once the daemon has closed the connection.
                let _ = tcp.write_all(&payload);
                let closed = closed_within(&mut tcp, Duration::from_secs(15));
                (closed, tcp)
            })
        })
        .collect();
    let results: Vec<_> = attackers.into_iter().map(|t| t.join().expect("attacker")).collect();
    let after = vm_rss_kib(pid);
    let grown = after.saturating_sub(before);
    eprintln!("VmRSS with {ATTACKERS} attackers: before {before} KiB, after {after} KiB, grown {grown} KiB");
    let open = results.iter().filter(|(closed, _)| !closed).count();
    assert!(grown < 16 * 1024, "the daemon grew by {grown} KiB ({before} -> {after}); {open} attackers still open");
    assert_eq!(open, 0, "every attacker is cut off");

    let frames = reader.frames();
    reader.wait_frames(frames + 30);
    assert!(daemon.child.try_wait().expect("try_wait").is_none(), "the daemon is running");
}
