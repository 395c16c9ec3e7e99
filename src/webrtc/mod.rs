//! WebRTC: WHEP playback of live streams to browsers and WHIP ingest from them, with the
//! `webrtc` crate on the daemon's runtime. This module keeps the sessions (each ends on DELETE,
//! when its peer goes away, when its stream ends, or when the grant that admitted it ends) and
//! builds their peer connections; [`whep`] and [`whip`] move the media. A session is made in
//! two steps, so that no credential is used for one that cannot start: prepared (everything
//! that can fail: the live check or the publisher slot, the port, the offer and its answer),
//! then, once the admission committed, started ([`WebRtc::start`]); a prepared session whose
//! commit fails is released ([`Reserved::release`]).

pub mod avc;
pub mod whep;
pub mod whip;

use crate::admission::Reserved;
use crate::config::ServerSettings;
use crate::net_limits::{Refusal, Slot, SlotLimits, Slots};
use crate::secrets::random_token;
use crate::security::sessions::SessionHandle;
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::media_stream::track_remote::TrackRemote;
use ::webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};
use ::webrtc::rtp_transceiver::RtpSender;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Time the ICE candidates of an answer may take to gather.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a peer has to connect after its answer, before the session is dropped and its place
/// freed (ICE on a network a browser can reach completes in a second or two).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time without a packet after which a peer counts as disconnected.
pub const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(5);
/// Time disconnected after which the session fails and its socket is freed.
pub const ICE_FAILED_AFTER: Duration = Duration::from_secs(10);
/// How often an idle connection is kept alive.
pub const ICE_KEEPALIVE_EVERY: Duration = Duration::from_secs(2);
/// Most WebRTC sessions (WHEP and WHIP together) at once.
pub const MAX_SESSIONS: usize = 100;

/// Why an offer could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The stream is not being published (WHEP).
    #[error("stream is not live")]
    NotLive,
    /// The stream is being published already (WHIP).
    #[error("stream is already being published")]
    InUse,
    /// As many sessions as the box allows are open.
    #[error("too many WebRTC sessions ({MAX_SESSIONS})")]
    Full,
    /// The application holds as many sessions as it may (webrtc.maxSessionsPerApp).
    #[error("too many WebRTC sessions for this application ({0}, webrtc.maxSessionsPerApp)")]
    AppFull(usize),
    /// The address holds as many sessions as it may (webrtc.maxSessionsPerAddress).
    #[error("too many WebRTC sessions from this address ({0}, webrtc.maxSessionsPerAddress)")]
    AddressFull(usize),
    /// Every UDP port of webrtc.udpPortMin..webrtc.udpPortMax is taken.
    #[error("no free UDP port in {0}..={1} (webrtc.udpPortMin, webrtc.udpPortMax)")]
    NoPort(u16, u16),
    /// The offer cannot be answered.
    #[error("the SDP offer cannot be answered: {0}")]
    Offer(String),
}

fn offer_error(e: impl std::fmt::Display) -> WebRtcError {
    WebRtcError::Offer(e.to_string())
}

/// An answered offer.
pub struct Answered {
    /// The SDP answer.
    pub sdp: String,
    /// The session's id, for its Location.
    pub id: String,
    /// What was left out of the media, to tell the client (AAC audio for WHEP).
    pub left_out: Option<&'static str>,
}

/// Where WebRTC media goes on the network.
#[derive(Debug, Clone)]
pub struct Network {
    /// The address media sockets bind (0.0.0.0: every interface but loopback).
    pub host: IpAddr,
    /// The public address of a box behind 1:1 NAT, offered instead of its own.
    pub public_address: Option<IpAddr>,
    /// The UDP ports sessions take theirs from (`0..=0`: any free port).
    pub ports: RangeInclusive<u16>,
    /// Most sessions one address (an IPv6 /64) may hold.
    pub max_per_address: usize,
    /// Most sessions one application may hold.
    pub max_per_app: usize,
}

impl Network {
    /// The network settings of `server`.
    pub fn from_settings(server: &ServerSettings) -> Self {
        Network {
            host: server.webrtc_host,
            public_address: server.webrtc_public_address,
            ports: server.webrtc_udp_port_min.0..=server.webrtc_udp_port_max.0,
            max_per_address: server.webrtc_max_sessions_per_address as usize,
            max_per_app: server.webrtc_max_sessions_per_app as usize,
        }
    }
}

/// The daemon's WebRTC sessions.
pub struct WebRtc {
    network: Network,
    /// Counts the ports handed out, to walk the range round.
    next_port: AtomicU16,
    sessions: Mutex<HashMap<String, Arc<Notify>>>,
    /// The places taken, by offers being answered and by sessions open: in all and per address.
    places: Arc<Slots>,
    /// The places each application holds.
    per_app: Arc<Mutex<HashMap<String, usize>>>,
}

/// A place among the sessions, taken before the offer is decided (so that an offer the box
/// cannot serve consumes no credential) and held until the session ends.
pub struct Reservation {
    _slot: Slot,
    per_app: Arc<Mutex<HashMap<String, usize>>>,
    peer: IpAddr,
    app: String,
}

impl Reservation {
    /// The address of the peer the place is for.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut per_app = lock_apps(&self.per_app);
        if let Some(n) = per_app.get_mut(&self.app) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_app.remove(&self.app);
            }
        }
    }
}

fn lock_apps(per_app: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    per_app.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session whose answer is made, waiting for its admission's commit to start; its place,
/// its peer connection and its media (reader or publisher slot) are held meanwhile.
pub struct Prepared {
    pc: Closing,
    events: Arc<Events>,
    media: Pin<Box<dyn Future<Output = &'static str> + Send>>,
    reservation: Reservation,
    answered: Answered,
}

impl Reserved for Prepared {
    async fn release(mut self) {
        if let Some(pc) = self.pc.0.take() {
            let _ = pc.close().await;
        }
    }
}

/// A peer connection that is closed when dropped, unless its session took it over: a prepared
/// session dropped on any path (its request abandoned) leaves no ICE agent or socket behind.
struct Closing(Option<Arc<dyn PeerConnection>>);

impl Closing {
    /// The connection, no longer closed on drop.
    fn keep(mut self) -> Option<Arc<dyn PeerConnection>> {
        self.0.take()
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let (Some(pc), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            drop(runtime.spawn(async move { drop(pc.close().await) }));
        }
    }
}

/// A peer connection whose answer is made.
struct Negotiated {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    connected: mpsc::Receiver<()>,
    senders: Vec<Arc<dyn RtpSender>>,
    sdp: String,
}

/// What ends a session besides its media: the grant that admitted it.
pub struct GrantWatch {
    /// Completes when the credentials are revoked.
    pub handle: SessionHandle,
    /// When the credentials expire, if they do.
    pub ends_at: Option<Instant>,
}

impl WebRtc {
    /// Sessions on `network`.
    pub fn new(network: Network) -> Arc<Self> {
        let limits = SlotLimits { total: MAX_SESSIONS, per_address: network.max_per_address, reserved: 0 };
        let places = Slots::new(limits);
        Arc::new(WebRtc {
            network,
            next_port: AtomicU16::new(0),
            sessions: Mutex::default(),
            places,
            per_app: Arc::default(),
        })
    }

    /// Takes a place for an offer from `peer` to `app`: within [`MAX_SESSIONS`] for the box,
    /// `webrtc.maxSessionsPerApp` and `webrtc.maxSessionsPerAddress` (an IPv6 /64 is one).
    pub fn reserve(&self, app: &str, peer: IpAddr) -> Result<Reservation, WebRtcError> {
        let slot = self.places.take(peer, false).map_err(|refusal| match refusal {
            Refusal::AddressFull(n) => WebRtcError::AddressFull(n),
            Refusal::Full(_) | Refusal::Reserved(_) => WebRtcError::Full,
        })?;
        let mut per_app = lock_apps(&self.per_app);
        let held = per_app.entry(app.to_string()).or_default();
        if *held >= self.network.max_per_app {
            return Err(WebRtcError::AppFull(self.network.max_per_app));
        }
        *held += 1;
        Ok(Reservation { _slot: slot, per_app: self.per_app.clone(), peer, app: app.to_string() })
    }

    /// A UDP port for a new session: any (0) without a range, else the next free one in it.
    fn udp_port(&self) -> Result<u16, WebRtcError> {
        let (low, high) = (*self.network.ports.start(), *self.network.ports.end());
        if high == 0 {
            return Ok(0);
        }
        let span = u32::from(high - low) + 1;
        for _ in 0..span {
            let offset = u32::from(self.next_port.fetch_add(1, Ordering::Relaxed)) % span;
            let port = low + offset as u16;
            if std::net::UdpSocket::bind((self.network.host, port)).is_ok() {
                return Ok(port);
            }
        }
        Err(WebRtcError::NoPort(low, high))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// WebRTC sessions open now.
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

    /// A peer connection for `codecs` with the local `tracks`, answering `offer`.
    async fn answer(
        &self,
        codecs: &[(RTCRtpCodecParameters, RtpCodecKind)],
        tracks: &[Arc<dyn TrackLocal>],
        offer: String,
    ) -> Result<Negotiated, WebRtcError> {
        let (events, mut gathered, connected) = Events::new();
        let mut media = MediaEngine::default();
        for (codec, kind) in codecs {
            media.register_codec(codec.clone(), *kind).map_err(offer_error)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media).map_err(offer_error)?;
        let engine = SettingEngineBuilder::new().with_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER),
            Some(ICE_KEEPALIVE_EVERY),
        );
        let port = self.udp_port()?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(engine.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(events.clone())
            .with_udp_addrs(vec![SocketAddr::new(self.network.host, port)])
            .build()
            .await
            .map_err(offer_error)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let answered = async {
            let mut senders = Vec::new();
            for track in tracks {
                senders.push(pc.add_track(track.clone()).await.map_err(offer_error)?);
            }
            let offer = RTCSessionDescription::offer(offer).map_err(offer_error)?;
            pc.set_remote_description(offer).await.map_err(offer_error)?;
            let answer = pc.create_answer(None).await.map_err(offer_error)?;
            pc.set_local_description(answer).await.map_err(offer_error)?;
            let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await;
            let local = pc.local_description().await.ok_or_else(|| offer_error("no local description"))?;
            let sdp = match self.network.public_address {
                Some(public) => with_public_address(&local.sdp, public),
                None => local.sdp,
            };
            Ok::<_, WebRtcError>((senders, sdp))
        };
        match answered.await {
            Ok((senders, sdp)) => Ok(Negotiated { pc, events, connected, senders, sdp }),
            Err(e) => {
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    /// A prepared session of `negotiated`, in the place `reservation` holds, answered with
    /// `left_out` noted, whose media `media` makes once the peer connects; closed if it cannot
    /// be named.
    async fn prepared<M: Future<Output = &'static str> + Send + 'static>(
        negotiated: Negotiated,
        media: impl FnOnce(mpsc::Receiver<()>) -> M,
        reservation: Reservation,
        left_out: Option<&'static str>,
    ) -> Result<Prepared, WebRtcError> {
        let Negotiated { pc, events, connected, sdp, .. } = negotiated;
        let Some(id) = random_token(16) else {
            let _ = pc.close().await;
            return Err(offer_error("no randomness for the session id"));
        };
        let answered = Answered { sdp, id, left_out };
        Ok(Prepared { pc: Closing(Some(pc)), events, media: Box::pin(media(connected)), reservation, answered })
    }

    /// Starts a prepared session, admitted on `grant`: it runs until its media ends, DELETE,
    /// the peer leaves or the grant ends. Returns its answer.
    pub fn start(self: &Arc<Self>, prepared: Prepared, grant: GrantWatch) -> Answered {
        let Prepared { pc, events, media, reservation, answered } = prepared;
        let pc = pc.keep();
        let end = Arc::new(Notify::new());
        self.lock().insert(answered.id.clone(), end.clone());
        let (webrtc, session_id) = (self.clone(), answered.id.clone());
        tokio::spawn(async move {
            let why = tokio::select! {
                why = media => why,
                () = end.notified() => "stopped",
                () = grant.handle.revoked() => "credentials revoked",
                () = until(grant.ends_at) => "credentials expired",
                () = events.closed.notified() => "peer gone",
            };
            // The id is what DELETE takes: only its first characters go to the log.
            log::info!("webrtc session {}… ended: {why}", session_id.get(..6).unwrap_or_default());
            webrtc.lock().remove(&session_id);
            if let Some(pc) = pc {
                let _ = pc.close().await;
            }
            drop(reservation);
        });
        answered
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The H.264 codec (constrained baseline and up, packetization mode 1).
pub fn h264_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_H264.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: 102,
    }
}

/// The Opus codec (48 kHz, stereo).
fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: 111,
    }
}

/// A random SSRC.
fn random_ssrc() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u32::from_be_bytes(bytes)
}

/// What a peer connection tells its session.
struct Events {
    gathered: mpsc::Sender<()>,
    connected: mpsc::Sender<()>,
    tracks: mpsc::Sender<Arc<dyn TrackRemote>>,
    tracks_rx: Mutex<Option<mpsc::Receiver<Arc<dyn TrackRemote>>>>,
    closed: Notify,
}

impl Events {
    fn new() -> (Arc<Self>, mpsc::Receiver<()>, mpsc::Receiver<()>) {
        let (gathered, gathered_rx) = mpsc::channel(1);
        let (connected, connected_rx) = mpsc::channel(1);
        let (tracks, tracks_rx) = mpsc::channel(4);
        let events =
            Events { gathered, connected, tracks, tracks_rx: Mutex::new(Some(tracks_rx)), closed: Notify::new() };
        (Arc::new(events), gathered_rx, connected_rx)
    }

    /// The remote tracks as they arrive (taken once).
    fn take_tracks(&self) -> Option<mpsc::Receiver<Arc<dyn TrackRemote>>> {
        self.tracks_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
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

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.try_send(track);
    }
}

/// `sdp` with the address of each host candidate replaced by `public`, the ports kept: what a
/// box behind 1:1 NAT offers. (The crate takes `nat_1to1_ips` as a setting but, in 0.21, never
/// applies it.) ICE still works: the NAT forwards the peer's checks to the box's own socket.
fn with_public_address(sdp: &str, public: IpAddr) -> String {
    let public = public.to_string();
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let mut fields: Vec<&str> = body.split(' ').collect();
        // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
        if body.starts_with("a=candidate:") && fields.get(6..8) == Some(&["typ", "host"][..]) {
            fields[4] = &public;
            out.push_str(&fields.join(" "));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_candidates_carry_the_public_address_and_everything_else_is_kept() {
        let sdp = "v=0\r\nc=IN IP4 0.0.0.0\r\n\
                   a=candidate:1 1 udp 2130706431 10.0.0.5 40200 typ host\r\n\
                   a=candidate:2 1 udp 1694498815 198.51.100.9 40200 typ srflx raddr 10.0.0.5 rport 40200\r\n\
                   a=end-of-candidates\r\n";
        let public = with_public_address(sdp, "203.0.113.7".parse().unwrap());
        assert_eq!(
            public,
            "v=0\r\nc=IN IP4 0.0.0.0\r\n\
             a=candidate:1 1 udp 2130706431 203.0.113.7 40200 typ host\r\n\
             a=candidate:2 1 udp 1694498815 198.51.100.9 40200 typ srflx raddr 10.0.0.5 rport 40200\r\n\
             a=end-of-candidates\r\n"
        );
        assert_eq!(
            with_public_address("a=candidate:1 1 udp 1 ::1 9 typ host", "2001:db8::1".parse().unwrap()),
            "a=candidate:1 1 udp 1 2001:db8::1 9 typ host"
        );
    }

    fn webrtc(per_address: usize, per_app: usize) -> Arc<WebRtc> {
        let host = "127.0.0.1".parse().unwrap();
        WebRtc::new(Network {
            host,
            public_address: None,
            ports: 0..=0,
            max_per_address: per_address,
            max_per_app: per_app,
        })
    }

    #[test]
    fn places_are_capped_per_address_per_application_and_in_all_and_come_back() {
        let rtc = webrtc(2, 3);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = rtc.reserve("A", ip("10.0.0.1")).unwrap();
        let _a2 = rtc.reserve("A", ip("::ffff:10.0.0.1")).unwrap();
        assert!(matches!(rtc.reserve("B", ip("10.0.0.1")), Err(WebRtcError::AddressFull(2))), "mapped IPv4 is IPv4");
        let _a3 = rtc.reserve("A", ip("2001:db8::1")).unwrap();
        assert!(matches!(rtc.reserve("A", ip("10.0.0.2")), Err(WebRtcError::AppFull(3))));
        let _b1 = rtc.reserve("B", ip("2001:db8::2")).unwrap();
        assert!(
            matches!(rtc.reserve("B", ip("2001:db8::ffff:3")), Err(WebRtcError::AddressFull(2))),
            "an IPv6 /64 is one address"
        );
        drop(a1);
        assert!(rtc.reserve("A", ip("10.0.0.1")).is_ok(), "a place comes back when its session ends");

        let rtc = webrtc(100, 100);
        let held: Vec<Reservation> =
            (0..MAX_SESSIONS).map(|i| rtc.reserve("A", IpAddr::from([10, 0, 0, i as u8])).unwrap()).collect();
        assert!(matches!(rtc.reserve("B", ip("10.1.0.1")), Err(WebRtcError::Full)));
        drop(held);
        assert!(lock_apps(&rtc.per_app).is_empty());
        let again: Vec<Reservation> =
            (0..MAX_SESSIONS).map(|i| rtc.reserve("B", IpAddr::from([10, 0, 0, i as u8])).unwrap()).collect();
        assert_eq!(again.len(), MAX_SESSIONS, "every place came back");
    }
}
