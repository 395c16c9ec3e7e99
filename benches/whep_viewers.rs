//! WHEP fan-out: N WebRTC viewers (the `webrtc` crate as the client, in this process) on one
//! live 720p30 H.264 stream that ffmpeg publishes over RTMP to a rampart release binary. Prints
//! rampart's CPU seconds per viewer-minute, its resident memory per viewer, and how many viewers
//! kept receiving. Not part of tests/run.sh: `cargo bench --bench whep_viewers [-- N ...]`
//! (default N = 10 50; BENCH_SECONDS sets the measured window, default 30).

use bytes::Bytes;
use http::Method;
use rampart::net::client::{HttpClient, Limits};
use rampart::webrtc::h264_codec;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
};

struct Viewer {
    gathered: tokio::sync::mpsc::Sender<()>,
    packets: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Viewer {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let packets = self.packets.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = event {
                    packets.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// Opens one viewer of `url`; its packet count grows as video arrives.
async fn open_viewer(url: &str, client: &HttpClient) -> (Box<dyn PeerConnection>, Arc<AtomicU64>) {
    let (gathered, mut gathered_rx) = tokio::sync::mpsc::channel(1);
    let packets = Arc::new(AtomicU64::new(0));
    let mut media = MediaEngine::default();
    media.register_codec(h264_codec(), RtpCodecKind::Video).expect("codec");
    let registry = register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Viewer { gathered, packets: packets.clone() }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await
        .expect("peer connection");
    let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() };
    pc.add_transceiver_from_kind(RtpCodecKind::Video, Some(init)).await.expect("transceiver");
    pc.set_local_description(pc.create_offer(None).await.expect("offer")).await.expect("local");
    let _ = tokio::time::timeout(Duration::from_secs(5), gathered_rx.recv()).await;
    let offer = pc.local_description().await.expect("offer sdp").sdp;
    let limits =
        Limits { connect_timeout: Duration::from_secs(5), total_timeout: Duration::from_secs(20), max_body: 64 * 1024 };
    let uri = url.parse().expect("url");
    let answer =
        client.request(Method::POST, &uri, Some(("application/sdp", Bytes::from(offer))), limits).await.expect("WHEP");
    assert_eq!(answer.status, 201, "WHEP answer: {}", String::from_utf8_lossy(&answer.body));
    let sdp = String::from_utf8(answer.body.to_vec()).expect("sdp");
    pc.set_remote_description(RTCSessionDescription::answer(sdp).expect("answer")).await.expect("remote");
    (Box::new(pc), packets)
}

/// The process's CPU seconds so far and its resident memory now, in KiB.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    (ticks as f64 / 100.0, rss.unwrap_or(0))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(n: usize, seconds: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("apps")).expect("config dir");
    let server = format!(
        "rtmp.host=127.0.0.1\nrtmp.port=0\nhttp.host=127.0.0.1\nhttp.port=0\nwebrtc.host=127.0.0.1\ndata.dir={}\n",
        dir.path().join("data").display()
    );
    std::fs::write(config.join("server.properties"), server).expect("server.properties");
    std::fs::write(config.join("apps/LiveApp.properties"), "").expect("app");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["--config".as_ref(), config.as_os_str()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("rampart");
    let pid = daemon.id();
    let mut lines = BufReader::new(daemon.stderr.take().expect("stderr")).lines();
    let daemon = Killed(daemon);
    let (mut rtmp, mut http) = (None, None);
    while rtmp.is_none() || http.is_none() {
        let line = lines.next().expect("rampart is listening").expect("log line");
        let port = || line.split("127.0.0.1:").nth(1)?.split(':').next()?.parse::<u16>().ok();
        if line.starts_with("RTMP ") || line.contains("RTMP  listening") {
            rtmp = port();
        } else if line.contains("HTTP  listening") {
            http = port();
        }
    }
    let (rtmp, http) = (rtmp.expect("rtmp port"), http.expect("http port"));
    let _publisher = Killed(
        Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline"])
            .args(["-b:v", "2M", "-g", "60", "-f", "flv", &format!("rtmp://127.0.0.1:{rtmp}/LiveApp/bench")])
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    while !lines.next().expect("the stream goes live").expect("log line").contains("allowed publish rtmp LiveApp/bench")
    {
    }
    std::thread::spawn(move || lines.for_each(drop));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = HttpClient::new(None).expect("client");
        let url = format!("http://127.0.0.1:{http}/LiveApp/whep/bench");
        let (_, idle_rss) = usage(pid);
        let mut viewers = Vec::new();
        while viewers.len() < n {
            viewers.push(open_viewer(&url, &client).await);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before: Vec<u64> = viewers.iter().map(|(_, p)| p.load(Ordering::Relaxed)).collect();
        let (cpu0, _) = usage(pid);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (cpu1, rss) = usage(pid);
        let received: Vec<u64> =
            viewers.iter().zip(&before).map(|((_, p), b)| p.load(Ordering::Relaxed) - b).collect();
        let kept_up = received.iter().filter(|r| **r as f64 >= 0.9 * received.iter().copied().max().unwrap_or(0) as f64).count();
        let minutes = seconds as f64 / 60.0;
        println!(
            "rampart WHEP  N={n:<3}  CPU {:.4} s/viewer-min  RSS {:.1} MiB ({:.0} KiB/viewer over the {:.1} MiB before the window)  kept up {kept_up}/{n}  packets/viewer median {}",
            (cpu1 - cpu0) / (n as f64 * minutes),
            rss as f64 / 1024.0,
            rss.saturating_sub(idle_rss) as f64 / n as f64,
            idle_rss as f64 / 1024.0,
            { let mut r = received.clone(); r.sort_unstable(); r[r.len() / 2] },
        );
        for (pc, _) in &viewers {
            let _ = pc.close().await;
        }
    });
    drop(daemon);
}

fn main() {
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let ns: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    for n in if ns.is_empty() { vec![10, 50] } else { ns } {
        run(n, seconds);
    }
}
