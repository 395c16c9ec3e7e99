//! The WebRTC session cap was global and unauthenticated: 105 offers on an open application in
//! 0.8 s made every WHEP and WHIP offer on every application answer 503 for ~10 s. Now one
//! address holds at most `webrtc.maxSessionsPerAddress` sessions (429 past it), one application
//! at most `webrtc.maxSessionsPerApp` (503), and a session whose peer never completes ICE gives
//! its place back within the connect timeout. The offers are one Chromium made, with its own
//! candidates left out, so no peer ever connects and nothing is sent anywhere.

mod common;

use common::daemon::{InProcess, publish, wait_for};
use common::rest::Rest;

const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

fn offer_from(daemon: &InProcess, ip: &str, app: &str) -> u16 {
    let answer =
        Rest::new(daemon.addr("HTTP")).from(ip).post_as(&format!("/{app}/whep/cam1"), "application/sdp", OFFER);
    answer.status
}

#[test]
fn a_flood_from_one_address_or_one_application_leaves_room_for_the_others() {
    let config = common::ConfigDir::loopback(
        "webrtc.host=127.0.0.1\nwebrtc.maxSessionsPerAddress=4\nwebrtc.maxSessionsPerApp=6\n",
    )
    .app("LiveApp", "")
    .app("Other", "");
    let daemon = InProcess::start_in(config);
    let _live = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let _other = publish(&format!("rtmp://{}/Other/cam1", daemon.addr("RTMP")), 120);
    wait_for("Other/cam1 live", || daemon.services.hub.live_streams().iter().any(|s| s.app == "Other"));

    let flood: Vec<u16> = (0..8).map(|_| offer_from(&daemon, "127.0.0.2", "LiveApp")).collect();
    assert_eq!(flood.iter().filter(|s| **s == 201).count(), 4, "{flood:?}");
    assert!(flood[4..].iter().all(|s| *s == 429), "past the address's cap: {flood:?}");
    assert_eq!(offer_from(&daemon, "127.0.0.3", "LiveApp"), 201, "another address is served");
    assert_eq!(offer_from(&daemon, "127.0.0.4", "LiveApp"), 201);
    assert_eq!(offer_from(&daemon, "127.0.0.5", "LiveApp"), 503, "past the application's cap");
    assert_eq!(offer_from(&daemon, "127.0.0.5", "Other"), 201, "another application is served");

    // Nobody connects: each session gives its place back once the connect timeout passes.
    wait_for("the flooding address's places to come back", || offer_from(&daemon, "127.0.0.2", "LiveApp") == 201);
    wait_for("every session to end", || daemon.services.webrtc.len() <= 1);
}
