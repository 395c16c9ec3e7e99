//! A box behind 1:1 NAT: with webrtc.publicAddress set, a WHEP answer offers that address in
//! its candidates instead of the box's own, on ports from webrtc.udpPortMin..udpPortMax. The
//! offer is one Chromium made (its own candidates left out, so nothing is sent anywhere).

mod common;

use common::daemon::{InProcess, publish};
use common::rest::Rest;

const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");
const PUBLIC: &str = "203.0.113.7";
const PORTS: std::ops::RangeInclusive<u16> = 40200..=40210;

#[test]
fn the_answer_offers_the_public_address_instead_of_the_boxs_own() {
    let daemon = InProcess::start(
        &format!(
            "webrtc.host=127.0.0.1\nwebrtc.publicAddress={PUBLIC}\nwebrtc.udpPortMin={}\nwebrtc.udpPortMax={}\n",
            PORTS.start(),
            PORTS.end()
        ),
        "",
    );
    let _publisher = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let rest = Rest::new(daemon.addr("HTTP"));

    let answer = rest.post_as("/LiveApp/whep/cam1", "application/sdp", OFFER);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let candidates: Vec<(&str, u16)> = answer
        .body
        .lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .map(|candidate| {
            let fields: Vec<&str> = candidate.split_whitespace().collect();
            (fields[4], fields[5].parse().expect("port"))
        })
        .collect();
    assert!(!candidates.is_empty(), "the answer carries candidates:\n{}", answer.body);
    for (address, port) in &candidates {
        assert_eq!(*address, PUBLIC, "only the public address is offered:\n{}", answer.body);
        assert!(PORTS.contains(port), "port {port} in {PORTS:?}");
    }

    let location = answer.header("location").expect("a Location");
    assert_eq!(rest.delete(location).status, 200);
}
