//! A peer that names its stream or application with a line break in it cannot forge log lines:
//! the daemon's standard error shows the name escaped, on the one line of its event.

mod common;

use common::{ConfigDir, Daemon, PATIENCE};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Writes what the client session wants sent; returns whether `wanted` was raised.
fn send(tcp: &mut TcpStream, results: Vec<ClientSessionResult>, wanted: fn(&ClientSessionEvent) -> bool) -> bool {
    let mut raised = false;
    for result in results {
        match result {
            ClientSessionResult::OutboundResponse(packet) => tcp.write_all(&packet.bytes).expect("write"),
            ClientSessionResult::RaisedEvent(event) => raised |= wanted(&event),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    raised
}

/// Reads until `wanted` is raised (true) or the server closes the connection (false).
fn read_until(tcp: &mut TcpStream, session: &mut ClientSession, wanted: fn(&ClientSessionEvent) -> bool) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        let n = match tcp.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let results = session.handle_input(&buffer[..n]).expect("server speaks RTMP");
        if send(tcp, results, wanted) {
            return true;
        }
    }
}

/// Connects to `app` and asks to publish `stream`, with rml_rtmp's client; returns when the
/// server answered or closed.
fn publish_named(addr: SocketAddr, app: &str, stream: &str) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut handshake = Handshake::new(PeerType::Client);
    tcp.write_all(&handshake.generate_outbound_p0_and_p1().expect("c0c1")).expect("write");
    let mut buffer = [0u8; 4096];
    let leftover = loop {
        let n = tcp.read(&mut buffer).expect("handshake answer");
        assert!(n > 0, "closed during the handshake");
        match handshake.process_bytes(&buffer[..n]).expect("handshake") {
            HandshakeProcessResult::InProgress { response_bytes } => tcp.write_all(&response_bytes).expect("write"),
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                tcp.write_all(&response_bytes).expect("write");
                break remaining_bytes;
            }
        }
    };
    let (mut session, results) = ClientSession::new(ClientSessionConfig::new()).expect("client session");
    send(&mut tcp, results, |_| false);
    if !leftover.is_empty() {
        let results = session.handle_input(&leftover).expect("server speaks RTMP");
        send(&mut tcp, results, |_| false);
    }
    let connect = session.request_connection(app.to_string()).expect("connect request");
    send(&mut tcp, vec![connect], |_| false);
    if !read_until(&mut tcp, &mut session, |e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)) {
        return;
    }
    let publish = session.request_publishing(stream.to_string(), PublishRequestType::Live).expect("publish request");
    send(&mut tcp, vec![publish], |_| false);
    read_until(&mut tcp, &mut session, |e| matches!(e, ClientSessionEvent::PublishRequestAccepted));
}

#[test]
fn stream_and_app_names_with_line_breaks_stay_on_their_line() {
    let config = ConfigDir::loopback("").app("LiveApp", "publishTokenControlEnabled=true\n");
    let mut daemon = Daemon::start(&["--config", config.path().to_str().expect("path")]);
    let rtmp = daemon.listening("RTMP");

    publish_named(rtmp, "LiveApp", "s1\nINFO  forged stream line\r\x1b[2K");
    let refused = daemon.wait_for("one-time token missing", PATIENCE);
    publish_named(rtmp, "Nope\nERROR forged app line", "s2");
    daemon.wait_for("unknown application", PATIENCE);

    let forged: Vec<&String> =
        daemon.seen.iter().filter(|l| l.contains("forged") && !l.starts_with("WARN  refused")).collect();
    assert!(forged.is_empty(), "forged log lines: {forged:?}\nlog:\n{}", daemon.seen.join("\n"));
    assert!(refused.contains("LiveApp/s1\\nINFO  forged stream line\\r\\x1b[2K from 127.0.0.1"), "{refused}");
    assert!(daemon.seen.iter().all(|l| !l.contains('\r') && !l.contains('\x1b')), "{:?}", daemon.seen);
}
