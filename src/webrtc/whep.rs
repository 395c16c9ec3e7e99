//! WHEP playback: a viewer's SDP offer becomes a peer connection that sends the live stream's
//! H.264 video, read from the hub like an RTMP player reads it (starting at the last keyframe,
//! skipping to the next one when it falls behind). AAC audio cannot travel in WebRTC and is
//! left out; the answer says so. A session ends on DELETE, when its peer goes away, when the
//! stream ends, or when the grant that admitted it ends.

use super::avc::{AvcConfig, annex_b, avc_payload, parse_config};
use crate::media::{Frame, Hub, MediaKind, Reader};
use crate::secrets::random_token;
use crate::security::sessions::SessionHandle;
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use ::webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};
use rtc::interceptor::Registry;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Time the ICE candidates of an answer may take to gather.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a viewer has to connect after its answer, before the session is dropped.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Most WHEP sessions at once.
pub const MAX_SESSIONS: usize = 100;
/// The RTP payload type offered for H.264.
const H264_PAYLOAD_TYPE: u8 = 102;

/// Why a viewer could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WhepError {
    /// The stream is not being published.
    #[error("stream is not live")]
    NotLive,
    /// As many sessions as allowed are open.
    #[error("too many WebRTC sessions ({MAX_SESSIONS})")]
    Full,
    /// The offer cannot be answered.
    #[error("the SDP offer cannot be answered: {0}")]
    Offer(String),
}

/// An answered offer.
pub struct Answered {
    /// The SDP answer.
    pub sdp: String,
    /// The session's id, for its Location.
    pub id: String,
    /// Whether the source's audio was left out (AAC).
    pub audio_left_out: bool,
}

/// The WHEP sessions of the daemon.
pub struct Whep {
    udp_host: IpAddr,
    sessions: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Whep {
    /// Sessions whose media sockets bind `udp_host` (0.0.0.0: every interface but loopback).
    pub fn new(udp_host: IpAddr) -> Arc<Self> {
        Arc::new(Whep { udp_host, sessions: Mutex::default() })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// WHEP sessions open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends session `id`; false when there is none.
    pub fn stop(&self, id: &str) -> bool {
        match self.lock().remove(id) {
            Some(end) => {
                end.notify_one();
                true
            }
            None => false,
        }
    }

    /// Answers `offer` for `app/stream`, and sends the stream until the session ends.
    pub async fn play(
        self: &Arc<Self>,
        hub: &Hub,
        app: &str,
        stream: &str,
        offer: String,
        grant: SessionHandle,
        grant_end: Option<Instant>,
    ) -> Result<Answered, WhepError> {
        if self.len() >= MAX_SESSIONS {
            return Err(WhepError::Full);
        }
        let reader = hub.subscribe(app, stream).ok_or(WhepError::NotLive)?;
        let audio_left_out = hub.live_streams().iter().any(|s| s.app == app && s.stream == stream && s.audio.is_some());
        let (events, mut gathered, connected) = Events::new();
        let codec = h264_codec();
        let mut media = MediaEngine::default();
        media.register_codec(codec.clone(), RtpCodecKind::Video).map_err(offer_error)?;
        let registry = register_default_interceptors(Registry::new(), &mut media).map_err(offer_error)?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(events.clone())
            .with_udp_addrs(vec![SocketAddr::new(self.udp_host, 0)])
            .build()
            .await
            .map_err(offer_error)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let ssrc = rand_ssrc();
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    format!("rampart-{stream}"),
                    "video".to_string(),
                    stream.to_string(),
                    RtpCodecKind::Video,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                        codec: codec.rtp_codec.clone(),
                        ..Default::default()
                    }],
                ),
            )
            .map_err(offer_error)?,
        );
        let answered = async {
            let sender = pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.map_err(offer_error)?;
            pc.set_remote_description(RTCSessionDescription::offer(offer).map_err(offer_error)?)
                .await
                .map_err(offer_error)?;
            let answer = pc.create_answer(None).await.map_err(offer_error)?;
            pc.set_local_description(answer).await.map_err(offer_error)?;
            let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await;
            let sdp = pc.local_description().await.ok_or_else(|| WhepError::Offer("no local description".into()))?.sdp;
            let parameters = sender.get_parameters().await.map_err(offer_error)?;
            let payload_type = parameters.rtp_parameters.codecs.first().map_or(H264_PAYLOAD_TYPE, |c| c.payload_type);
            Ok::<_, WhepError>((sdp, payload_type))
        };
        let (sdp, payload_type) = match answered.await {
            Ok(done) => done,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let id = random_token(16).ok_or_else(|| WhepError::Offer("no randomness".into()))?;
        let end = Arc::new(Notify::new());
        self.lock().insert(id.clone(), end.clone());
        let feed = Feed { track, ssrc, payload_type, config: None, last_timestamp: None };
        let (whep, session_id) = (self.clone(), id.clone());
        tokio::spawn(async move {
            let why = tokio::select! {
                why = feed.run(reader, connected) => why,
                () = end.notified() => "stopped",
                () = grant.revoked() => "credentials revoked",
                () = until(grant_end) => "credentials expired",
                () = events.closed.notified() => "peer gone",
            };
            log::info!("whep session {session_id} ended: {why}");
            whep.lock().remove(&session_id);
            let _ = pc.close().await;
        });
        Ok(Answered { sdp, id, audio_left_out })
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The H.264 codec offered to viewers (constrained baseline and up, packetization mode 1).
fn h264_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: H264_PAYLOAD_TYPE,
    }
}

fn rand_ssrc() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u32::from_be_bytes(bytes)
}

fn offer_error(e: impl std::fmt::Display) -> WhepError {
    WhepError::Offer(e.to_string())
}

/// What the peer connection tells the session.
struct Events {
    gathered: tokio::sync::mpsc::Sender<()>,
    connected: tokio::sync::mpsc::Sender<()>,
    closed: Notify,
}

impl Events {
    fn new() -> (Arc<Self>, tokio::sync::mpsc::Receiver<()>, tokio::sync::mpsc::Receiver<()>) {
        let (gathered, gathered_rx) = tokio::sync::mpsc::channel(1);
        let (connected, connected_rx) = tokio::sync::mpsc::channel(1);
        (Arc::new(Events { gathered, connected, closed: Notify::new() }), gathered_rx, connected_rx)
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = self.connected.try_send(());
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Closed => {
                self.closed.notify_one();
            }
            _ => {}
        }
    }
}

/// Sends a reader's H.264 frames to a track.
struct Feed {
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
    config: Option<AvcConfig>,
    last_timestamp: Option<u32>,
}

impl Feed {
    /// Waits for the viewer to connect, then sends until the stream ends; returns why it ended.
    async fn run(mut self, reader: Reader, mut connected: tokio::sync::mpsc::Receiver<()>) -> &'static str {
        if tokio::time::timeout(CONNECT_TIMEOUT, connected.recv()).await.is_err() {
            return "viewer never connected";
        }
        while let Some(frame) = reader.recv().await {
            if let Err(why) = self.send(&frame).await {
                return why;
            }
        }
        "stream ended"
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), &'static str> {
        if frame.kind != MediaKind::Video {
            return Ok(());
        }
        let Some((is_config, data)) = avc_payload(&frame.payload) else { return Ok(()) };
        if is_config {
            self.config = parse_config(data);
            return Ok(());
        }
        let Some(config) = &self.config else { return Ok(()) };
        let prefix: &[bytes::Bytes] = if frame.is_keyframe() { &config.parameter_sets } else { &[] };
        let Some(access_unit) = annex_b(data, config.length_size, prefix) else { return Ok(()) };
        let step = self.last_timestamp.map_or(0, |last| frame.timestamp.wrapping_sub(last).min(1000));
        self.last_timestamp = Some(frame.timestamp);
        let sample = Sample {
            data: access_unit.into(),
            duration: Duration::from_millis(u64::from(step)),
            ..Sample::new(Instant::now())
        };
        self.track
            .sample_writer(self.ssrc, self.payload_type)
            .write_sample(&sample)
            .await
            .map_err(|_| "the track could not be written")
    }
}
