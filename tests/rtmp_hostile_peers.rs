//! Peers that send garbage, stop half-way through the handshake, announce a huge chunk size or a
//! huge message are cut off, each alone; the daemon keeps serving everyone else.

mod common;

use common::daemon::{InProcess, Reader, publish};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(daemon: &InProcess) -> TcpStream {
    let tcp = TcpStream::connect(daemon.addr("RTMP")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp
}

/// Completes a plain RTMP handshake as a client.
fn handshake(daemon: &InProcess) -> TcpStream {
    let mut tcp = connect(daemon);
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| (i * 7 % 251) as u8));
    c0c1[5..9].copy_from_slice(&[0, 0, 0, 0]);
    tcp.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    tcp.read_exact(&mut s0s1s2).unwrap();
    tcp.write_all(&s0s1s2[1..1537]).unwrap();
    tcp
}

/// Reads until the server closes the connection; fails if it is still open after 30 s.
fn assert_closed(mut tcp: TcpStream, what: &str) {
    let mut buffer = [0u8; 4096];
    loop {
        match tcp.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{what}: connection not closed by the server: {e}"),
        }
    }
}

/// A type-0 chunk header on chunk stream 2 for a message of `length` bytes of `type_id`.
fn chunk_header(length: u32, type_id: u8) -> Vec<u8> {
    let mut header = vec![0x02, 0, 0, 0];
    header.extend_from_slice(&length.to_be_bytes()[1..]);
    header.push(type_id);
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

#[test]
fn hostile_peers_are_cut_off_and_others_keep_streaming() {
    let daemon = InProcess::start("server.handshakeTimeout=2", "");
    let _publisher = publish(&daemon.url("s1"), 60);
    daemon.wait_live("s1", 0);
    let reader = Reader::start(&daemon.url("s1"), 60, &[]);
    reader.wait_frames(10);

    let mut garbage = connect(&daemon);
    let noise: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let _ = garbage.write_all(&noise);
    assert_closed(garbage, "garbage");

    let mut truncated = connect(&daemon);
    truncated.write_all(&[3u8; 200]).unwrap();
    let started = Instant::now();
    assert_closed(truncated, "truncated handshake");
    assert!(started.elapsed() < Duration::from_secs(10), "closed by the handshake timeout");

    let mut huge_chunks = handshake(&daemon);
    let mut set_chunk_size = chunk_header(4, 1);
    set_chunk_size.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    huge_chunks.write_all(&set_chunk_size).unwrap();
    assert_closed(huge_chunks, "huge chunk size");

    let mut huge_message = handshake(&daemon);
    let mut header = chunk_header(0x00ff_ffff, 9);
    header.extend_from_slice(&[0x17; 128]);
    huge_message.write_all(&header).unwrap();
    assert_closed(huge_message, "huge message");

    let before = reader.frames();
    reader.wait_frames(before + 30);
    let status = daemon.services.hub.live_streams();
    assert_eq!(status.len(), 1, "the publisher was not disturbed");
}

#[test]
fn silent_connections_time_out_and_the_cap_refuses_the_rest() {
    let daemon = InProcess::start("server.idleTimeout=1\nrtmp.maxConnections=2", "");
    let first = handshake(&daemon);
    let _second = handshake(&daemon);
    assert_closed(connect(&daemon), "a third connection beyond rtmp.maxConnections=2");
    let started = Instant::now();
    assert_closed(first, "a silent connection");
    assert!(started.elapsed() < Duration::from_secs(10), "closed by the idle timeout");
}
