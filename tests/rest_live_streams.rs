//! The server API's live streams: a live RTMP stream is listed with its publisher, codecs and
//! readers, and stopping it ends its publisher's and its players' sessions.

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::rest::Rest;

#[test]
fn a_live_stream_is_listed_and_stopping_it_ends_its_sessions() {
    let daemon = InProcess::start("", "");
    let mut panel = Rest::new(daemon.addr("HTTP")).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin", "a long admin password").status, 200);
    let mut publisher = publish(&daemon.url("cam1"), 120);
    daemon.wait_live("cam1", 0);
    let reader = Reader::start(&daemon.url("cam1"), 120, &[]);
    daemon.wait_live("cam1", 1);

    let live = panel.get("/rest/v2/live-streams").json();
    let stream = &live[0];
    assert_eq!((stream["app"].as_str(), stream["streamId"].as_str()), (Some("LiveApp"), Some("cam1")));
    assert_eq!((stream["protocol"].as_str(), stream["videoCodec"].as_str()), (Some("rtmp"), Some("H.264")));
    assert_eq!(stream["readers"], 1);

    let stopped = panel.delete("/rest/v2/live-streams/LiveApp/cam1");
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    assert!(!publisher.wait(), "the publisher is cut off");
    let mut reader = reader;
    reader.client.wait();
    daemon.wait_audit("DELETE /rest/v2/live-streams/LiveApp/cam1", "stream stopped, 2 session(s) ended");
    assert_eq!(panel.delete("/rest/v2/live-streams/LiveApp/cam1").status, 404, "no longer live");
}
