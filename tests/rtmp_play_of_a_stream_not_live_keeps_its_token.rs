//! An RTMP play of a stream that is not live is refused (NetStream.Play.StreamNotFound), and
//! that refusal used to burn the player's one-time token. Now the reader is attached before the
//! token is consumed, so the same token plays once the stream is live.

mod common;

use common::daemon::{InProcess, Reader, publish};
use rampart::security::Action::Play;

#[test]
fn a_play_refused_as_not_live_keeps_its_token() {
    let daemon = InProcess::start("", "playTokenControlEnabled=true");
    let token = daemon.one_time_token("viewer", "cam1", Play);
    let url = daemon.url(&format!("cam1?token={token}"));

    let mut refused = Reader::start(&url, 2, &[]);
    assert!(!refused.client.wait(), "a play of a stream that is not live is refused");

    let _live = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    Reader::start(&url, 2, &[]).wait_frames(30);
    daemon.wait_audit("cam1", "not started: stream is not live");
}
