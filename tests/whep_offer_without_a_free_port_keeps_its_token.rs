//! A WHEP offer when every UDP port of webrtc.udpPortMin..udpPortMax is taken is refused (503),
//! and that refusal used to burn the viewer's one-time token: the decision consumed it before a
//! port was found. Now the port is taken first and the token is consumed only once the session
//! can start, so the same token plays once a port is free. The range is one port, held by this
//! test; the offer is one Chromium made, its candidates left out.

mod common;

use common::daemon::{InProcess, publish};
use rampart::security::Action::Play;

const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

#[test]
fn an_offer_with_no_port_free_keeps_its_token() {
    let held = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let port = held.local_addr().expect("its address").port();
    let daemon = InProcess::start(
        &format!("webrtc.host=127.0.0.1\nwebrtc.udpPortMin={port}\nwebrtc.udpPortMax={port}\n"),
        "playTokenControlEnabled=true",
    );
    let _live = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let token = daemon.one_time_token("viewer", "cam1", Play);
    let path = format!("/LiveApp/whep/cam1?token={token}");

    let refused = daemon.offer(&path, OFFER);
    assert_eq!(refused.status, 503, "{}", refused.body);

    drop(held);
    let answer = daemon.offer(&path, OFFER);
    assert_eq!(answer.status, 201, "{}", answer.body);
    daemon.wait_audit("cam1", "admitted by one-time token");
    daemon.wait_audit("cam1", "not started: no free UDP port");
}
