//! A WHEP offer that is not SDP the box can answer is refused (400), and that refusal used to
//! burn the viewer's one-time token: the decision consumed it before the offer was parsed. Now
//! the answer is made first and the token is consumed only once the session can start, so the
//! same token plays with a good offer (one Chromium made, its candidates left out).

mod common;

use common::daemon::{InProcess, publish};
use rampart::security::Action::Play;

const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

#[test]
fn an_offer_that_cannot_be_answered_keeps_its_token() {
    let daemon = InProcess::start("webrtc.host=127.0.0.1\n", "playTokenControlEnabled=true");
    let _live = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let token = daemon.one_time_token("viewer", "cam1", Play);
    let path = format!("/LiveApp/whep/cam1?token={token}");

    let refused = daemon.offer(&path, "v=0\r\nthis is not an offer\r\n");
    assert_eq!(refused.status, 400, "{}", refused.body);

    let answer = daemon.offer(&path, OFFER);
    assert_eq!(answer.status, 201, "{}", answer.body);
    daemon.wait_audit("cam1", "admitted by one-time token");
    daemon.wait_audit("cam1", "not started: the SDP offer cannot be answered");
}
