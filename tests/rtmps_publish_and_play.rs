//! RTMPS: with rtmpsEnabled, ffmpeg publishes and plays over TLS with the self-signed device
//! certificate made at first start (certificate verification off on the client).

mod common;

use common::daemon::{InProcess, Reader, publish};

#[test]
fn publish_and_play_over_tls() {
    let daemon = InProcess::start("rtmpsEnabled=true", "");
    let url = format!("rtmps://{}/LiveApp/secure", daemon.addr("RTMPS"));
    let _publisher = publish(&url, 30);
    daemon.wait_live("secure", 0);
    let status = daemon.services.hub.live_streams();
    assert_eq!(status[0].protocol, "rtmps");
    let reader = Reader::start(&url, 2, &["-tls_verify", "0"]);
    reader.wait_frames(30);
    // The same stream is readable over plain RTMP too.
    Reader::start(&daemon.url("secure"), 2, &[]).wait_frames(30);
    assert!(daemon.config.file("data/device-cert.pem").exists());
}
