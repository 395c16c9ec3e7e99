//! ffmpeg publishes over RTMP and ffmpeg readers receive the frames; a second publisher of a
//! live stream is refused; playing a stream that is not live is refused.

mod common;

use common::daemon::{InProcess, Reader, publish};

#[test]
fn readers_receive_what_the_publisher_sends() {
    let daemon = InProcess::start("", "");
    let _publisher = publish(&daemon.url("s1"), 30);
    daemon.wait_live("s1", 0);
    let mut reader = Reader::start(&daemon.url("s1"), 3, &[]);
    assert!(reader.client.wait(), "reader ended cleanly");
    let frames = reader.frames();
    assert!(frames >= 60, "3 s at 30 fps, got {frames} frames");

    let status = daemon.services.hub.live_streams();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].video, status[0].audio), (Some("H.264"), Some("AAC")));
    assert!(status[0].publisher.is_loopback());
}

#[test]
fn a_second_publisher_cannot_take_a_live_stream() {
    let daemon = InProcess::start("", "");
    let _first = publish(&daemon.url("s1"), 30);
    daemon.wait_live("s1", 0);
    let mut second = publish(&daemon.url("s1"), 5);
    assert!(!second.wait(), "the second publisher fails");
    let reader = Reader::start(&daemon.url("s1"), 2, &[]);
    reader.wait_frames(30);
}

#[test]
fn playing_a_stream_that_is_not_live_fails() {
    let daemon = InProcess::start("", "");
    let mut reader = Reader::start(&daemon.url("nothing"), 2, &[]);
    assert!(!reader.client.wait());
    assert_eq!(reader.frames(), 0);
}

#[test]
fn an_unknown_application_is_refused_and_audited() {
    let daemon = InProcess::start("", "");
    let url = format!("rtmp://{}/OtherApp/s1", daemon.addr("RTMP"));
    let mut publisher = publish(&url, 5);
    assert!(!publisher.wait());
    daemon.wait_audit("s1", "unknown application");
}

#[test]
fn a_player_outlasts_the_idle_timeout() {
    // Players only receive; traffic either way keeps a connection alive.
    let daemon = InProcess::start("server.idleTimeout=3", "");
    let _publisher = publish(&daemon.url("s1"), 30);
    daemon.wait_live("s1", 0);
    let mut reader = Reader::start(&daemon.url("s1"), 7, &[]);
    assert!(reader.client.wait(), "reader ended cleanly after its 7 s");
    assert!(reader.frames() >= 180, "got {} frames", reader.frames());
}

#[test]
fn players_see_only_the_audio_and_video_streams() {
    // Extra data messages at play start would show up as subtitle or data streams and break
    // `ffmpeg -map 0` restreams.
    let daemon = InProcess::start("", "");
    let _publisher = publish(&daemon.url("s1"), 30);
    daemon.wait_live("s1", 0);
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", &daemon.url("s1")])
        .output()
        .expect("ffprobe");
    let mut kinds: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    kinds.sort();
    assert_eq!(kinds, ["audio", "video"], "{}", String::from_utf8_lossy(&out.stderr));
}
