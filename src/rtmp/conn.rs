//! One RTMP connection. The handshake and the chunk stream go through rml_rtmp; every byte is
//! first scanned by the [`ChunkGuard`], so a hostile peer is cut off before it can make the
//! daemon buffer much. A publish or play is admitted (decided, its hub slot or reader reserved,
//! its credentials consumed) before rml_rtmp accepts it; media goes through the hub, and players
//! get each frame as RTMP chunks serialised once per frame and shared by all of them.

use super::chunks::{self, AUDIO_CSID, ChunkGuard, DATA_CSID, GuardError, GuardLimits, UnadmittedBudget, VIDEO_CSID};
use super::metadata;
use crate::admission::{Admission, Refused, Reserved};
use crate::clock::Clock;
use crate::media::{Frame, Hub, MediaKind, Publisher, PublisherInfo, Reader};
use crate::security::audit::AuditEvent;
use crate::security::sessions::{SessionHandle, Sessions};
use crate::security::{AccessRequest, Action, Credentials, Grant, Now, Protocol};
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::server::TlsStream;

/// The chunk size rampart sends with; players' chunks are serialised with it.
pub const OUT_CHUNK_SIZE: usize = 4096;
/// The chunk stream rml_rtmp sends its data (AMF0 notify) messages on.
const RML_DATA_CSID: u8 = 3;
/// Bytes read from a publisher's socket at once.
const READ_BUFFER: usize = 16 * 1024;
/// Bytes read at once before a connection publishes: players send little, and with hundreds
/// of them a publisher's buffer each would be most of the daemon's memory.
const SMALL_READ_BUFFER: usize = 2 * 1024;
/// Most queued frames sent to a player in one write.
const MAX_FRAMES_PER_WRITE: usize = 32;
/// Why a publish is refused after its decision: the stream is live already (streamIdInUse).
const IN_USE: &str = "stream is already being published";
/// Why a play is refused after its decision.
const NOT_LIVE: &str = "stream is not live";
/// Milliseconds of media time audio may wait for the next video frame before it is written.
const AUDIO_WAIT_MS: u32 = 100;

/// Bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to finish the RTMP (and TLS) handshake.
    pub handshake_timeout: Duration,
    /// Time a connection may stay silent both ways, and a write may take.
    pub idle_timeout: Duration,
    /// Time from accept to an admitted publish or play (and from the end of one to the next).
    pub admission_timeout: Duration,
    /// Chunk-level limits on what a peer sends.
    pub guard: GuardLimits,
    /// End sessions when their grant expires or is revoked.
    pub end_sessions_with_grant: bool,
}

/// What every connection shares.
pub struct Context {
    /// Admits every publish and play.
    pub admission: Arc<Admission>,
    /// Carries the media.
    pub hub: Arc<Hub>,
    /// Live sessions, for revocation.
    pub sessions: Arc<Sessions>,
    /// The daemon's clock.
    pub clock: Arc<dyn Clock>,
    /// Bounds of each connection.
    pub limits: Limits,
    /// What the connections not yet admitted may buffer together.
    pub unadmitted: Arc<UnadmittedBudget>,
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("RTMP session error: {0}")]
    Session(String),
    #[error("{0}")]
    Guard(#[from] GuardError),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("session ended: {0}")]
    Ended(&'static str),
}

/// What the connection is doing.
enum Role {
    Idle,
    Publishing(Session<Publisher>),
    Playing(Session<Reader>, u32),
}

/// An admitted publish or play, with what ends it.
struct Session<T> {
    side: T,
    action: Action,
    app: String,
    stream: String,
    grant_end: Option<Instant>,
    handle: SessionHandle,
}

enum Wake {
    Read(Result<usize, std::io::Error>),
    Idle,
    NotAdmitted,
    Frame(Option<Arc<Frame>>),
    GrantExpired,
    Revoked,
}

/// A connection that splits into a reading and a writing half.
pub trait Duplex {
    /// The reading half.
    type Read: AsyncRead + Unpin + Send;
    /// The writing half.
    type Write: AsyncWrite + Unpin + Send;
    /// The two halves.
    fn halves(self) -> (Self::Read, Self::Write);
}

/// Plain TCP splits without a lock: each half is the socket itself.
impl Duplex for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;
    fn halves(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

/// TLS keeps one state for both directions, so its halves share it behind a lock.
impl Duplex for TlsStream<TcpStream> {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;
    fn halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// Serves one connection until it closes, fails or is refused; the reason is logged.
pub async fn serve<S: Duplex>(stream: S, peer: SocketAddr, protocol: Protocol, ctx: Arc<Context>) {
    let (reader, writer) = stream.halves();
    let admission_deadline = Instant::now() + ctx.limits.admission_timeout;
    let mut conn = Conn {
        admission_deadline,
        ctx,
        peer,
        protocol,
        writer,
        pending: Pending::default(),
        role: Role::Idle,
        last_activity: Instant::now(),
    };
    match conn.run(reader).await {
        Ok(()) => log::debug!("{} {peer}: closed", protocol.as_str()),
        Err(e) => log::info!("{} {peer}: {e}", protocol.as_str()),
    }
}

struct Conn<W> {
    ctx: Arc<Context>,
    peer: SocketAddr,
    protocol: Protocol,
    writer: W,
    /// Frames serialised for this player and not written yet.
    pending: Pending,
    role: Role,
    /// When bytes last went either way; a connection silent both ways for the idle timeout closes.
    last_activity: Instant,
    /// When a connection with no publish or play admitted by then closes.
    admission_deadline: Instant,
}

impl<W: AsyncWrite + Unpin + Send> Conn<W> {
    async fn run(&mut self, mut reader: impl AsyncRead + Unpin) -> Result<(), ConnError> {
        let limits = self.ctx.limits;
        let leftover = tokio::time::timeout(limits.handshake_timeout, self.handshake(&mut reader))
            .await
            .map_err(|_| ConnError::Timeout("handshake"))??;
        let mut config = ServerSessionConfig::new();
        config.chunk_size = OUT_CHUNK_SIZE as u32;
        let (mut session, initial) = ServerSession::new(config).map_err(|e| ConnError::Session(e.to_string()))?;
        self.write_results(initial).await?;
        let mut guard = ChunkGuard::new(limits.guard, self.ctx.unadmitted.clone());
        self.input(&mut session, &mut guard, &leftover).await?;

        let mut buffer = vec![0u8; SMALL_READ_BUFFER];
        // Both timers are made once and moved only when needed: a timer per frame per player
        // would cost more than the frame itself.
        let idle = tokio::time::sleep(limits.idle_timeout);
        let expiry = tokio::time::sleep(limits.idle_timeout);
        // Until a publish or play is admitted: a peer that only acknowledges holds no slot for long.
        let admission = tokio::time::sleep_until(self.admission_deadline.into());
        tokio::pin!(idle, expiry, admission);
        let mut armed_expiry = None;
        let mut armed_admission = Some(self.admission_deadline);
        loop {
            let admission_deadline = matches!(self.role, Role::Idle).then_some(self.admission_deadline);
            if admission_deadline != armed_admission {
                if let Some(deadline) = admission_deadline {
                    admission.as_mut().reset(deadline.into());
                }
                armed_admission = admission_deadline;
            }
            let grant_end = self.grant_end();
            if grant_end != armed_expiry {
                if let Some(end) = grant_end {
                    expiry.as_mut().reset(end.into());
                }
                armed_expiry = grant_end;
            }
            // In this order: the end of the session first, then frames (a player wakes mostly
            // for them), so that a player that always has a frame waiting still ends on time.
            let wake = tokio::select! {
                biased;
                () = &mut expiry, if armed_expiry.is_some() => Wake::GrantExpired,
                () = revocation(&self.role) => Wake::Revoked,
                frame = next_frame(&self.role) => Wake::Frame(frame),
                read = reader.read(&mut buffer) => Wake::Read(read),
                () = &mut idle => Wake::Idle,
                () = &mut admission, if armed_admission.is_some() => Wake::NotAdmitted,
            };
            match wake {
                Wake::Idle => {
                    let deadline = self.last_activity + limits.idle_timeout;
                    if deadline <= Instant::now() {
                        return Err(ConnError::Timeout("idle connection"));
                    }
                    idle.as_mut().reset(deadline.into());
                }
                Wake::NotAdmitted => return Err(ConnError::Timeout("admission (no publish or play admitted)")),
                Wake::Read(read) => match read? {
                    0 => return Ok(()),
                    n => {
                        self.last_activity = Instant::now();
                        self.input(&mut session, &mut guard, &buffer[..n]).await?;
                        if matches!(self.role, Role::Publishing(_)) && buffer.len() < READ_BUFFER {
                            buffer.resize(READ_BUFFER, 0);
                        }
                    }
                },
                Wake::Frame(Some(frame)) => self.play(&frame, guard.announced_enhanced_rtmp()).await?,
                Wake::Frame(None) => {
                    self.flush().await?;
                    if let Role::Playing(_, stream_id) = &self.role {
                        let packet =
                            session.finish_playing(*stream_id).map_err(|e| ConnError::Session(e.to_string()))?;
                        self.write(&packet.bytes).await?;
                    }
                    return Ok(());
                }
                Wake::GrantExpired => return Err(self.end("credentials expired")),
                Wake::Revoked => return Err(self.end("credentials revoked")),
            }
        }
    }

    /// Runs the RTMP handshake; returns the bytes that followed it.
    async fn handshake(&mut self, reader: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, ConnError> {
        let mut handshake = Handshake::new(PeerType::Server);
        let mut buffer = [0u8; 4096];
        loop {
            let n = reader.read(&mut buffer).await?;
            if n == 0 {
                return Err(ConnError::Handshake("peer closed".into()));
            }
            match handshake.process_bytes(&buffer[..n]).map_err(|e| ConnError::Handshake(e.to_string()))? {
                HandshakeProcessResult::InProgress { response_bytes } => self.write(&response_bytes).await?,
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    self.write(&response_bytes).await?;
                    return Ok(remaining_bytes);
                }
            }
        }
    }

    /// Feeds received bytes through the guard into the session, and acts on what comes out.
    async fn input(
        &mut self,
        session: &mut ServerSession,
        guard: &mut ChunkGuard,
        bytes: &[u8],
    ) -> Result<(), ConnError> {
        if bytes.is_empty() {
            return Ok(());
        }
        guard.scan(bytes)?;
        let results = session.handle_input(bytes).map_err(|e| ConnError::Session(e.to_string()))?;
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.write(&packet.bytes).await?,
                ServerSessionResult::RaisedEvent(event) => self.event(session, event).await?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        if matches!(self.role, Role::Publishing(_)) {
            guard.admit_publisher();
        }
        Ok(())
    }

    async fn event(&mut self, session: &mut ServerSession, event: ServerSessionEvent) -> Result<(), ConnError> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. }
            | ServerSessionEvent::ReleaseStreamRequested { request_id, .. } => self.accept(session, request_id).await,
            ServerSessionEvent::PublishStreamRequested { request_id, app_name, stream_key, .. } => {
                let request = self.request(Action::Publish, &app_name, &stream_key);
                let (hub, info) =
                    (self.ctx.hub.clone(), PublisherInfo { peer: self.peer.ip(), protocol: self.protocol.as_str() });
                let (app, stream) = (request.app.clone(), request.stream_id.clone());
                let slot = async move { hub.publish(&app, &stream, info).map_err(|_| IN_USE) };
                let admitted = self.admit(session, request_id, request, slot).await?;
                self.accept(session, request_id).await?;
                self.role = Role::Publishing(admitted);
                Ok(())
            }
            ServerSessionEvent::PlayStreamRequested { request_id, app_name, stream_key, stream_id, .. } => {
                let request = self.request(Action::Play, &app_name, &stream_key);
                let hub = self.ctx.hub.clone();
                let (app, stream) = (request.app.clone(), request.stream_id.clone());
                let reader = async move { hub.subscribe(&app, &stream).ok_or(NOT_LIVE) };
                let admitted = self.admit(session, request_id, request, reader).await?;
                self.accept_play(session, request_id).await?;
                self.role = Role::Playing(admitted, stream_id);
                Ok(())
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                self.publish(Frame::new(MediaKind::Video, timestamp.value, data));
                Ok(())
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                self.publish(Frame::new(MediaKind::Audio, timestamp.value, data));
                Ok(())
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(body) = metadata::on_metadata(&metadata) {
                    self.publish(Frame::new(MediaKind::Data, 0, body));
                }
                Ok(())
            }
            ServerSessionEvent::PublishStreamFinished { .. } | ServerSessionEvent::PlayStreamFinished { .. } => {
                // Audio held for the stream that ended is not written into the next one.
                self.pending.clear();
                self.role = Role::Idle;
                self.admission_deadline = Instant::now() + self.ctx.limits.admission_timeout;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The request a publish or play of `stream_key` on `app_name` makes.
    fn request(&self, action: Action, app_name: &str, stream_key: &str) -> AccessRequest {
        let (app, app_query) = split_query(app_name);
        let (stream, stream_query) = split_query(stream_key);
        AccessRequest {
            action,
            protocol: self.protocol,
            app: app.to_string(),
            stream_id: stream.to_string(),
            room_id: None,
            peer_ip: crate::security::ip_filter::canonical(self.peer.ip()),
            // The stream name's query first: a credential given twice takes its value from there.
            credentials: Credentials::from_query(&format!("{stream_query}&{app_query}")),
            now: Now::from_clock(self.ctx.clock.as_ref()),
        }
    }

    /// Admits a publish or play whose session is `side` (reserved only once the request is
    /// allowed); on refusal answers the client (generically when access is denied) and fails.
    async fn admit<T: Reserved>(
        &mut self,
        session: &mut ServerSession,
        request_id: u32,
        request: AccessRequest,
        side: impl Future<Output = Result<T, &'static str>>,
    ) -> Result<Session<T>, ConnError> {
        let action = request.action;
        if !matches!(self.role, Role::Idle) {
            self.reject(session, request_id, "NetStream.Failed", "one stream per connection").await?;
            return Err(ConnError::Refused("one stream per connection"));
        }
        let (app, stream) = (request.app.clone(), request.stream_id.clone());
        let (code, text) = match self.ctx.admission.admit(request, side).await {
            Ok((side, grant)) => return Ok(self.admitted(side, action, app, stream, &grant)),
            Err(Refused::Denied(_)) => match action {
                Action::Publish => ("NetStream.Publish.Unauthorized", "access denied"),
                Action::Play => ("NetStream.Play.Failed", "access denied"),
            },
            Err(Refused::Unavailable(why)) => {
                log::info!("{} {}: {app}/{stream}: {why}", self.protocol.as_str(), self.peer);
                match action {
                    Action::Publish => ("NetStream.Publish.BadName", why),
                    Action::Play => ("NetStream.Play.StreamNotFound", why),
                }
            }
        };
        self.reject(session, request_id, code, text).await?;
        Err(ConnError::Refused(text))
    }

    fn admitted<T>(&self, side: T, action: Action, app: String, stream: String, grant: &Grant) -> Session<T> {
        let grant_end = grant.ends_at(self.ctx.clock.as_ref()).filter(|_| self.ctx.limits.end_sessions_with_grant);
        let handle = self.ctx.sessions.register(&app, &stream, grant);
        Session { side, action, app, stream, grant_end, handle }
    }

    fn publish(&self, frame: Frame) {
        if let Role::Publishing(session) = &self.role {
            session.side.send(frame);
        }
    }

    /// Writes a frame to this player, with the frames queued behind it (the publisher's reads
    /// often hand several to the hub at once), in one vectored write. Each frame is serialised
    /// once for every player on stream 1.
    ///
    /// Audio waits for the video frame that follows it (see [`Pending`]) and goes out in the
    /// same write: one system call, and one wakeup of the player, per video frame instead of
    /// per frame. The kernel's send path is most of what fan-out costs.
    ///
    /// A player that did not announce Enhanced RTMP (`enhanced`) gets no Enhanced RTMP audio
    /// (Opus from WHIP, say): players before Enhanced RTMP stall on it, losing the video too.
    async fn play(&mut self, first: &Frame, enhanced: bool) -> Result<(), ConnError> {
        let Role::Playing(session, stream_id) = &self.role else { return Ok(()) };
        let stream_id = *stream_id;
        let pending = &mut self.pending;
        let mut write_now = false;
        let mut next = Some(first);
        let mut queued;
        while let Some(frame) = next {
            if enhanced || !frame.is_enhanced_audio() {
                write_now |= pending.add(frame, rtmp_wire(frame, stream_id));
            }
            if pending.is_full() {
                break;
            }
            queued = session.side.try_recv();
            next = queued.as_deref();
        }
        if write_now { self.flush().await } else { Ok(()) }
    }

    /// Writes the frames pending for this player.
    async fn flush(&mut self) -> Result<(), ConnError> {
        let wires = std::mem::take(&mut self.pending.wires);
        let written = self.write_frames(&wires).await;
        self.pending.wires = wires;
        self.pending.clear();
        written
    }

    /// Writes serialised frames within the idle timeout.
    async fn write_frames(&mut self, wires: &[Bytes]) -> Result<(), ConnError> {
        if wires.is_empty() {
            return Ok(());
        }
        let mut write = std::pin::pin!(write_all_vectored(&mut self.writer, wires));
        // Nearly every write completes at once; only one that has to wait gets a deadline (a
        // timer entry per write would cost a lock on the runtime's timer wheel).
        match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(written) => written?,
            Poll::Pending => tokio::time::timeout(self.ctx.limits.idle_timeout, write)
                .await
                .map_err(|_| ConnError::Timeout("write"))??,
        }
        self.last_activity = Instant::now();
        Ok(())
    }

    /// When the grant of the session in progress ends, if it does.
    fn grant_end(&self) -> Option<Instant> {
        match &self.role {
            Role::Publishing(s) => s.grant_end,
            Role::Playing(s, _) => s.grant_end,
            Role::Idle => None,
        }
    }

    /// Ends the session for `why`, with an audit event.
    fn end(&self, why: &'static str) -> ConnError {
        let (action, app, stream) = match &self.role {
            Role::Publishing(s) => (s.action, s.app.clone(), s.stream.clone()),
            Role::Playing(s, _) => (s.action, s.app.clone(), s.stream.clone()),
            Role::Idle => return ConnError::Ended(why),
        };
        self.ctx.admission.pipeline().audit().record(AuditEvent {
            time: self.ctx.clock.unix_secs(),
            action: action.as_str(),
            protocol: self.protocol.as_str(),
            app,
            stream,
            peer_ip: crate::security::ip_filter::canonical(self.peer.ip()),
            allowed: false,
            reason: format!("session ended: {why}"),
            count: 1,
        });
        ConnError::Ended(why)
    }

    async fn accept(&mut self, session: &mut ServerSession, request_id: u32) -> Result<(), ConnError> {
        let results = session.accept_request(request_id).map_err(|e| ConnError::Session(e.to_string()))?;
        self.write_results(results).await
    }

    /// Accepts a play without the two data messages rml_rtmp adds (`|RtmpSampleAccess` and a
    /// `NetStream.Data.Start` status): ffmpeg turns them into a subtitle and a data stream, which
    /// breaks `-map 0` restreams. rml_rtmp sends data messages, and only these, on chunk stream 3,
    /// and never another one on it later, so leaving them out keeps its header compression sound.
    async fn accept_play(&mut self, session: &mut ServerSession, request_id: u32) -> Result<(), ConnError> {
        let mut results = session.accept_request(request_id).map_err(|e| ConnError::Session(e.to_string()))?;
        results.retain(|result| match result {
            ServerSessionResult::OutboundResponse(packet) => {
                packet.bytes.first().is_none_or(|b| b & 0x3f != RML_DATA_CSID)
            }
            _ => true,
        });
        self.write_results(results).await
    }

    async fn reject(
        &mut self,
        session: &mut ServerSession,
        request_id: u32,
        code: &str,
        text: &str,
    ) -> Result<(), ConnError> {
        let results = session.reject_request(request_id, code, text).map_err(|e| ConnError::Session(e.to_string()))?;
        self.write_results(results).await
    }

    async fn write_results(&mut self, results: Vec<ServerSessionResult>) -> Result<(), ConnError> {
        for result in results {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.write(&packet.bytes).await?;
            }
        }
        Ok(())
    }

    /// Writes within the idle timeout, so a peer that stops reading is cut off.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        tokio::time::timeout(self.ctx.limits.idle_timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| ConnError::Timeout("write"))??;
        self.last_activity = Instant::now();
        Ok(())
    }
}

/// Frames serialised for a player and not written yet: audio waits for the video frame that
/// follows it, up to [`AUDIO_WAIT_MS`] of media time, to go out in the same write.
#[derive(Default)]
struct Pending {
    wires: Vec<Bytes>,
    /// The media time of the first pending frame.
    since: Option<u32>,
}

impl Pending {
    /// Adds `frame`, serialised as `wire`; true once the pending frames should be written.
    fn add(&mut self, frame: &Frame, wire: Bytes) -> bool {
        self.wires.push(wire);
        let since = *self.since.get_or_insert(frame.timestamp);
        frame.kind != MediaKind::Audio || frame.timestamp.wrapping_sub(since) >= AUDIO_WAIT_MS || self.is_full()
    }

    /// Whether one write takes no more.
    fn is_full(&self) -> bool {
        self.wires.len() >= MAX_FRAMES_PER_WRITE
    }

    fn clear(&mut self) {
        self.wires.clear();
        self.since = None;
    }
}

/// `LiveApp?token=1` → (`LiveApp`, `token=1`); slashes around the name are dropped.
fn split_query(name: &str) -> (&str, &str) {
    let (name, query) = name.split_once('?').unwrap_or((name, ""));
    (name.trim_matches('/'), query)
}

/// `frame` as RTMP chunks on message stream `stream_id`.
fn rtmp_wire(frame: &Frame, stream_id: u32) -> Bytes {
    let (csid, type_id) = match frame.kind {
        MediaKind::Video => (VIDEO_CSID, 9),
        MediaKind::Audio => (AUDIO_CSID, 8),
        MediaKind::Data => (DATA_CSID, 18),
    };
    let serialise = |id| chunks::chunk_message(csid, type_id, id, frame.timestamp, &frame.payload, OUT_CHUNK_SIZE);
    match stream_id {
        1 => frame.rtmp_wire.get_or_init(|| serialise(1)).clone(),
        other => serialise(other),
    }
}

/// Writes every byte of `parts`, up to [`MAX_FRAMES_PER_WRITE`] of them per system call, as few
/// calls as the socket allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(writer: &mut W, parts: &[Bytes]) -> std::io::Result<()> {
    let (mut index, mut offset) = (0, 0);
    let mut slices = [IoSlice::new(&[]); MAX_FRAMES_PER_WRITE];
    while index < parts.len() {
        let pending = &parts[index..parts.len().min(index + MAX_FRAMES_PER_WRITE)];
        for (slice, part) in slices.iter_mut().zip(pending) {
            *slice = IoSlice::new(part);
        }
        slices[0] = IoSlice::new(&pending[0][offset..]);
        let mut written = writer.write_vectored(&slices[..pending.len()]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 && index < parts.len() {
            let left = parts[index].len() - offset;
            if written >= left {
                written -= left;
                (index, offset) = (index + 1, 0);
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

async fn next_frame(role: &Role) -> Option<Arc<Frame>> {
    match role {
        Role::Playing(session, _) => session.side.recv().await,
        _ => std::future::pending().await,
    }
}

async fn revocation(role: &Role) {
    match role {
        Role::Publishing(s) => s.handle.revoked().await,
        Role::Playing(s, _) => s.handle.revoked().await,
        Role::Idle => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: MediaKind, timestamp: u32) -> Frame {
        Frame::new(kind, timestamp, Bytes::from_static(b"\xaf\x01"))
    }

    #[test]
    fn audio_waits_for_the_next_video_frame_or_its_time_limit() {
        let mut pending = Pending::default();
        assert!(!pending.add(&frame(MediaKind::Audio, 1000), Bytes::new()), "audio waits");
        assert!(!pending.add(&frame(MediaKind::Audio, 1023), Bytes::new()));
        assert!(pending.add(&frame(MediaKind::Video, 1033), Bytes::new()), "video takes it along");
        pending.clear();
        assert!(!pending.add(&frame(MediaKind::Audio, 2000), Bytes::new()));
        assert!(!pending.add(&frame(MediaKind::Audio, 2000 + AUDIO_WAIT_MS - 1), Bytes::new()));
        assert!(pending.add(&frame(MediaKind::Audio, 2000 + AUDIO_WAIT_MS), Bytes::new()), "audio-only: at the limit");
        pending.clear();
        assert!(pending.add(&frame(MediaKind::Data, 0), Bytes::new()), "metadata goes at once");
        pending.clear();
        for i in 0..MAX_FRAMES_PER_WRITE as u32 - 1 {
            assert!(!pending.add(&frame(MediaKind::Audio, 0), Bytes::new()), "{i}");
        }
        assert!(pending.add(&frame(MediaKind::Audio, 0), Bytes::new()), "a full write goes");
    }

    #[test]
    fn names_split_from_their_queries() {
        assert_eq!(split_query("LiveApp?token=1&jwt=2"), ("LiveApp", "token=1&jwt=2"));
        assert_eq!(split_query("/LiveApp/"), ("LiveApp", ""));
        assert_eq!(split_query("s1"), ("s1", ""));
        assert_eq!(split_query("s1?"), ("s1", ""));
    }

    /// Takes at most 3 bytes per write, from the first slice only, as a full socket might.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_vectored_write_sends_every_byte_in_order_across_short_writes() {
        let parts =
            [Bytes::from_static(b"abcde"), Bytes::new(), Bytes::from_static(b"fg"), Bytes::from_static(b"hijklmn")];
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut out = Trickle(Vec::new());
        runtime.block_on(write_all_vectored(&mut out, &parts)).unwrap();
        assert_eq!(out.0, b"abcdefghijklmn");
    }
}
