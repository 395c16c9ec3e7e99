//! A WHEP offer for a stream that is not live is refused (404), and that refusal used to burn
//! the viewer's one-time token and TOTP step: the decision consumed them before the stream was
//! known to be live. Now the session is prepared first and the credentials are consumed only
//! once it can start, so the same token and code play once the stream is live. The offer is one
//! Chromium made, with its own candidates left out, so nothing is sent anywhere.

mod common;

use common::daemon::{InProcess, publish};
use common::security::totp_code_now;
use rampart::security::Action::Play;

const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

#[test]
fn an_offer_refused_as_not_live_keeps_its_token_and_code() {
    let daemon = InProcess::start(
        "webrtc.host=127.0.0.1\n",
        "playTokenControlEnabled=true\nenableTimeTokenForPlay=true\ntimeTokenSecretForPlay=totp-secret\n\
         timeTokenPeriod=600",
    );
    let token = daemon.one_time_token("viewer", "cam1", Play);
    let code = totp_code_now("totp-secret", "viewer", "cam1", Play, 600);
    let path = format!("/LiveApp/whep/cam1?token={token}&subscriberId=viewer&subscriberCode={code}");

    assert_eq!(daemon.offer(&path, OFFER).status, 404, "the stream is not live");

    let _live = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let answer = daemon.offer(&path, OFFER);
    assert_eq!(answer.status, 201, "{}", answer.body);
    daemon.wait_audit("cam1", "admitted by one-time token, TOTP");
    daemon.wait_audit("cam1", "not started: stream is not live");
}
