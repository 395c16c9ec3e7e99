//! A WHIP offer for a stream that is being published already is refused (409), and that
//! refusal used to burn the publisher's one-time token: the decision consumed it before the
//! hub's publisher slot was known to be free. Now the slot is reserved first and the token is
//! consumed only once it is held, so the same token publishes once the stream is free. The
//! offer is Chromium's (its candidates left out) turned into a publisher's: nothing is sent.

mod common;

use common::daemon::{InProcess, publish};
use rampart::security::Action::Publish;

const VIEWER_OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

#[test]
fn an_offer_refused_as_in_use_keeps_its_token() {
    let offer = VIEWER_OFFER.replace("a=recvonly", "a=sendonly");
    let daemon = InProcess::start("webrtc.host=127.0.0.1\n", "publishTokenControlEnabled=true");
    let rtmp = daemon.one_time_token("rtmp", "cam1", Publish);
    let whip = daemon.one_time_token("whip", "cam1", Publish);
    let path = format!("/LiveApp/whip/cam1?token={whip}");

    let live = publish(&daemon.url(&format!("cam1?token={rtmp}")), 120);
    daemon.wait_live("cam1", 0);
    let refused = daemon.offer(&path, &offer);
    assert_eq!(refused.status, 409, "{}", refused.body);

    drop(live);
    daemon.wait_not_live("cam1");
    let answer = daemon.offer(&path, &offer);
    assert_eq!(answer.status, 201, "{}", answer.body);
    daemon.wait_audit("cam1", "admitted by one-time token");
    daemon.wait_audit("cam1", "not started: stream is already being published");
}
