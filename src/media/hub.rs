//! The stream hub. Per live stream it keeps the metadata, the sequence headers and the current
//! GOP (bounded in bytes), so that a new reader starts decoding at once from the last keyframe.
//! Each reader has a queue bounded in bytes; a reader that falls behind skips to the next
//! keyframe. The publisher never waits for a reader, and no reader makes memory grow.

use super::flv::Codec;
use super::{Frame, MediaKind};
use atomic_waker::AtomicWaker;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bounds of the hub's memory.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Bytes a reader's queue may hold before it skips to the next keyframe.
    pub reader_queue_bytes: usize,
    /// Bytes of the current GOP kept for new readers.
    pub gop_cache_bytes: usize,
}

/// Who publishes a stream.
#[derive(Debug, Clone)]
pub struct PublisherInfo {
    /// The publisher's address.
    pub peer: IpAddr,
    /// The protocol it publishes with.
    pub protocol: &'static str,
}

/// A live stream as the panel and the REST API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus {
    /// The application.
    pub app: String,
    /// The stream.
    pub stream: String,
    /// The publisher's address.
    pub publisher: IpAddr,
    /// The publisher's protocol.
    pub protocol: &'static str,
    /// The video codec, once seen.
    pub video: Option<&'static str>,
    /// The audio codec, once seen.
    pub audio: Option<&'static str>,
    /// Incoming bitrate over the last few seconds, in kbit/s.
    pub bitrate_kbps: u64,
    /// Readers attached now.
    pub readers: usize,
    /// Unix seconds at which publishing started.
    pub started: u64,
}

/// The stream is live already: a second publisher is refused, never allowed to take it over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream {app}/{stream} is already being published")]
pub struct StreamInUse {
    /// The application.
    pub app: String,
    /// The stream.
    pub stream: String,
}

type Key = (String, String);

/// The hub of all live streams.
pub struct Hub {
    streams: Mutex<HashMap<Key, Arc<Live>>>,
    limits: HubLimits,
    bytes_received: AtomicU64,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: HubLimits) -> Arc<Self> {
        Arc::new(Hub { streams: Mutex::new(HashMap::new()), limits, bytes_received: AtomicU64::new(0) })
    }

    /// Starts publishing `app/stream`; dropping the [`Publisher`] ends the stream.
    pub fn publish(self: &Arc<Self>, app: &str, stream: &str, info: PublisherInfo) -> Result<Publisher, StreamInUse> {
        let key = (app.to_string(), stream.to_string());
        let mut streams = lock(&self.streams);
        if streams.contains_key(&key) {
            return Err(StreamInUse { app: key.0, stream: key.1 });
        }
        let live = Arc::new(Live::new(key.clone(), info, self.limits));
        streams.insert(key, live.clone());
        Ok(Publisher { hub: self.clone(), live })
    }

    /// Attaches a reader to `app/stream` if it is live; it starts with the headers and the GOP.
    pub fn subscribe(&self, app: &str, stream: &str) -> Option<Reader> {
        let live = lock(&self.streams).get(&(app.to_string(), stream.to_string()))?.clone();
        let queue = live.attach(self.limits.reader_queue_bytes)?;
        Some(Reader { live, queue })
    }

    /// Every live stream, sorted by application and stream.
    pub fn live_streams(&self) -> Vec<LiveStatus> {
        let lives: Vec<Arc<Live>> = lock(&self.streams).values().cloned().collect();
        let mut statuses: Vec<LiveStatus> = lives.iter().map(|live| live.status()).collect();
        statuses.sort_by(|a, b| (&a.app, &a.stream).cmp(&(&b.app, &b.stream)));
        statuses
    }

    /// Media payload bytes received from every publisher since the start.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    fn remove(&self, live: &Arc<Live>) {
        let mut streams = lock(&self.streams);
        if streams.get(&live.key).is_some_and(|current| Arc::ptr_eq(current, live)) {
            streams.remove(&live.key);
        }
    }
}

/// The publishing side of a live stream.
pub struct Publisher {
    hub: Arc<Hub>,
    live: Arc<Live>,
}

impl Publisher {
    /// Hands a frame to every reader (and the GOP cache) without waiting for any of them.
    pub fn send(&self, frame: Frame) {
        self.hub.bytes_received.fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
        self.live.send(Arc::new(frame));
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.hub.remove(&self.live);
        self.live.end();
    }
}

/// The reading side of a live stream.
pub struct Reader {
    live: Arc<Live>,
    queue: Arc<ReaderQueue>,
}

impl Reader {
    /// The next frame, or `None` once the stream has ended.
    pub async fn recv(&self) -> Option<Arc<Frame>> {
        std::future::poll_fn(|cx| {
            // Registered before looking, so a frame offered in between still wakes this task.
            self.queue.waker.register(cx.waker());
            match self.queue.pop() {
                Some(Queued::Frame(frame)) => Poll::Ready(Some(frame)),
                Some(Queued::Ended) => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next frame if one is queued already, without waiting (to send several at once).
    pub fn try_recv(&self) -> Option<Arc<Frame>> {
        match self.queue.pop() {
            Some(Queued::Frame(frame)) => Some(frame),
            _ => None,
        }
    }

    /// Frames skipped so far because this reader fell behind.
    pub fn skipped(&self) -> u64 {
        lock(&self.queue.state).skipped
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.live.detach(&self.queue);
    }
}

struct ReaderQueue {
    state: Mutex<QueueState>,
    /// The reader's task, woken when a frame is queued. A reader has one task: an
    /// [`AtomicWaker`] wakes it without the lock and waiter list a `Notify` takes per frame.
    waker: AtomicWaker,
    max_bytes: usize,
}

#[derive(Default)]
struct QueueState {
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
    waiting_for_keyframe: bool,
    /// A header was skipped while behind: the current ones go out again before the keyframe.
    header_skipped: bool,
    ended: bool,
    skipped: u64,
}

impl QueueState {
    fn push(&mut self, frame: &Arc<Frame>) {
        self.bytes += frame.payload.len();
        self.frames.push_back(frame.clone());
    }
}

/// What a reader's queue holds at its head.
enum Queued {
    Frame(Arc<Frame>),
    Ended,
}

impl ReaderQueue {
    /// Takes the next frame; `None` while the queue is empty and the stream goes on.
    fn pop(&self) -> Option<Queued> {
        let mut state = lock(&self.state);
        match state.frames.pop_front() {
            Some(frame) => {
                state.bytes -= frame.payload.len();
                Some(Queued::Frame(frame))
            }
            None => state.ended.then_some(Queued::Ended),
        }
    }

    /// Queues `frame` unless the reader is behind. A lagging reader resumes only at a `resync`
    /// frame (a video keyframe; any audio frame of a stream without video), preceded by the
    /// stream's current `headers` when it skipped a header meanwhile: resuming at a metadata
    /// or sequence-header frame would hand the decoder P-frames with no keyframe before them.
    fn offer(&self, frame: &Arc<Frame>, resync: bool, headers: &[&Arc<Frame>]) {
        let mut state = lock(&self.state);
        let size = frame.payload.len();
        let behind = state.waiting_for_keyframe && !resync;
        if behind || (state.bytes + size > self.max_bytes && !(state.frames.is_empty() && resync)) {
            state.waiting_for_keyframe = true;
            state.header_skipped |= frame.is_header();
            state.skipped += 1;
            return;
        }
        if std::mem::take(&mut state.header_skipped) {
            for header in headers {
                state.push(header);
            }
        }
        state.waiting_for_keyframe = false;
        state.push(frame);
        drop(state);
        self.waker.wake();
    }

    fn end(&self) {
        lock(&self.state).ended = true;
        self.waker.wake();
    }
}

/// Bitrate is measured over windows of this length.
const BITRATE_WINDOW: Duration = Duration::from_secs(5);

struct Live {
    key: Key,
    info: PublisherInfo,
    started: SystemTime,
    gop_cache_bytes: usize,
    state: Mutex<LiveState>,
}

struct LiveState {
    metadata: Option<Arc<Frame>>,
    video_header: Option<Arc<Frame>>,
    audio_header: Option<Arc<Frame>>,
    gop: Vec<Arc<Frame>>,
    gop_bytes: usize,
    has_video: bool,
    video_codec: Option<Codec>,
    audio_codec: Option<Codec>,
    window_start: Instant,
    window_bytes: u64,
    bitrate_kbps: u64,
    readers: Vec<Arc<ReaderQueue>>,
    ended: bool,
}

impl Live {
    fn new(key: Key, info: PublisherInfo, limits: HubLimits) -> Self {
        let state = LiveState {
            metadata: None,
            video_header: None,
            audio_header: None,
            gop: Vec::new(),
            gop_bytes: 0,
            has_video: false,
            video_codec: None,
            audio_codec: None,
            window_start: Instant::now(),
            window_bytes: 0,
            bitrate_kbps: 0,
            readers: Vec::new(),
            ended: false,
        };
        Live {
            key,
            info,
            started: SystemTime::now(),
            gop_cache_bytes: limits.gop_cache_bytes,
            state: Mutex::new(state),
        }
    }

    fn send(&self, frame: Arc<Frame>) {
        let mut state = lock(&self.state);
        state.account(frame.payload.len());
        match (frame.kind, frame.info) {
            (MediaKind::Data, _) => state.metadata = Some(frame.clone()),
            (MediaKind::Video, Some(info)) => {
                state.has_video = true;
                state.video_codec = Some(info.codec);
                if info.sequence_header {
                    state.video_header = Some(frame.clone());
                }
            }
            (MediaKind::Audio, Some(info)) => {
                state.audio_codec = Some(info.codec);
                if info.sequence_header {
                    state.audio_header = Some(frame.clone());
                }
            }
            _ => {}
        }
        if !frame.is_header() {
            self.cache(&mut state, &frame);
        }
        let resync = frame.is_keyframe() || (!state.has_video && frame.kind == MediaKind::Audio && !frame.is_header());
        let headers: Vec<&Arc<Frame>> = state.headers().collect();
        for reader in &state.readers {
            reader.offer(&frame, resync, &headers);
        }
    }

    /// Keeps the GOP that starts at the last keyframe, up to the cache's size.
    fn cache(&self, state: &mut LiveState, frame: &Arc<Frame>) {
        if frame.is_keyframe() {
            state.gop.clear();
            state.gop_bytes = 0;
        } else if state.gop.is_empty() {
            return; // no keyframe yet: nothing a decoder could start from
        }
        let size = frame.payload.len();
        if state.gop_bytes + size <= self.gop_cache_bytes {
            state.gop_bytes += size;
            state.gop.push(frame.clone());
        }
    }

    fn attach(&self, max_bytes: usize) -> Option<Arc<ReaderQueue>> {
        let mut state = lock(&self.state);
        if state.ended {
            return None;
        }
        let queue =
            Arc::new(ReaderQueue { state: Mutex::new(QueueState::default()), waker: AtomicWaker::new(), max_bytes });
        for frame in state.headers() {
            queue.offer(frame, true, &[]);
        }
        for frame in &state.gop {
            queue.offer(frame, frame.is_keyframe(), &[]);
        }
        state.readers.push(queue.clone());
        Some(queue)
    }

    fn detach(&self, queue: &Arc<ReaderQueue>) {
        lock(&self.state).readers.retain(|r| !Arc::ptr_eq(r, queue));
    }

    fn end(&self) {
        let mut state = lock(&self.state);
        state.ended = true;
        for reader in state.readers.drain(..) {
            reader.end();
        }
    }

    fn status(&self) -> LiveStatus {
        let state = lock(&self.state);
        LiveStatus {
            app: self.key.0.clone(),
            stream: self.key.1.clone(),
            publisher: self.info.peer,
            protocol: self.info.protocol,
            video: state.video_codec.map(Codec::name),
            audio: state.audio_codec.map(Codec::name),
            bitrate_kbps: state.bitrate_kbps,
            readers: state.readers.len(),
            started: self.started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

impl LiveState {
    /// The metadata and sequence headers a decoder needs before a keyframe, as far as seen.
    fn headers(&self) -> impl Iterator<Item = &Arc<Frame>> {
        [&self.metadata, &self.video_header, &self.audio_header].into_iter().flatten()
    }

    fn account(&mut self, bytes: usize) {
        self.window_bytes += bytes as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= BITRATE_WINDOW {
            self.bitrate_kbps = self.window_bytes * 8 / elapsed.as_millis().max(1) as u64;
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const LIMITS: HubLimits = HubLimits { reader_queue_bytes: 1000, gop_cache_bytes: 10_000 };

    fn info() -> PublisherInfo {
        PublisherInfo { peer: "127.0.0.1".parse().unwrap(), protocol: "rtmp" }
    }

    fn video(ts: u32, keyframe: bool, size: usize) -> Frame {
        let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1];
        body.resize(size.max(2), 0);
        Frame::new(MediaKind::Video, ts, Bytes::from(body))
    }

    fn avc_header() -> Frame {
        Frame::new(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]))
    }

    /// What a reader has queued now, as (timestamp, keyframe) pairs.
    fn drain(reader: &Reader) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        let mut state = lock(&reader.queue.state);
        while let Some(frame) = state.frames.pop_front() {
            out.push((frame.timestamp, frame.is_keyframe()));
        }
        state.bytes = 0;
        out
    }

    #[test]
    fn a_second_publisher_is_refused() {
        let hub = Hub::new(LIMITS);
        let first = hub.publish("LiveApp", "s1", info()).unwrap();
        assert!(hub.publish("LiveApp", "s1", info()).is_err());
        assert!(hub.publish("LiveApp", "s2", info()).is_ok());
        drop(first);
        assert!(hub.publish("LiveApp", "s1", info()).is_ok(), "free again once the first one left");
    }

    #[test]
    fn a_new_reader_starts_with_headers_and_the_last_gop() {
        let hub = Hub::new(LIMITS);
        let publisher = hub.publish("LiveApp", "s1", info()).unwrap();
        publisher.send(avc_header());
        for (ts, key) in [(10, false), (20, true), (30, false), (40, true), (50, false)] {
            publisher.send(video(ts, key, 10));
        }
        let reader = hub.subscribe("LiveApp", "s1").unwrap();
        assert_eq!(drain(&reader), vec![(0, false), (40, true), (50, false)]);
        publisher.send(video(60, false, 10));
        assert_eq!(drain(&reader), vec![(60, false)]);
        assert!(hub.subscribe("LiveApp", "nope").is_none());
    }

    #[test]
    fn a_reader_behind_skips_to_the_next_keyframe_and_others_are_unaffected() {
        let hub = Hub::new(LIMITS);
        let publisher = hub.publish("LiveApp", "s1", info()).unwrap();
        publisher.send(video(0, true, 100));
        let slow = hub.subscribe("LiveApp", "s1").unwrap();
        let fast = hub.subscribe("LiveApp", "s1").unwrap();
        drain(&fast);
        for ts in 1..=20 {
            publisher.send(video(ts, false, 100));
            assert_eq!(drain(&fast), vec![(ts, false)]);
        }
        assert!(lock(&slow.queue.state).bytes <= 1000, "bounded");
        publisher.send(video(21, false, 100));
        let queued = drain(&slow);
        assert_eq!(queued.first(), Some(&(0, true)));
        assert_eq!(queued.len(), 10, "1000 bytes of 100-byte frames");
        publisher.send(video(22, false, 100));
        assert_eq!(drain(&slow), vec![], "still waiting for a keyframe");
        publisher.send(video(23, true, 100));
        publisher.send(video(24, false, 100));
        assert_eq!(drain(&slow), vec![(23, true), (24, false)]);
        assert_eq!(slow.skipped(), 13, "frames 10 to 22");
        assert_eq!(fast.skipped(), 0);
    }

    #[test]
    fn a_reader_behind_resumes_at_a_keyframe_not_at_a_header() {
        let hub = Hub::new(LIMITS);
        let publisher = hub.publish("LiveApp", "s1", info()).unwrap();
        publisher.send(avc_header());
        publisher.send(video(0, true, 100));
        let slow = hub.subscribe("LiveApp", "s1").unwrap();
        for ts in 1..=12 {
            publisher.send(video(ts, false, 100));
        }
        drain(&slow);
        publisher.send(Frame::new(MediaKind::Data, 13, Bytes::from_static(&[2, 0, 10])));
        publisher.send(avc_header());
        publisher.send(video(14, false, 100));
        assert_eq!(drain(&slow), vec![], "no P-frame after a header while behind");
        publisher.send(video(15, true, 100));
        publisher.send(video(16, false, 100));
        let resumed: Vec<_> = lock(&slow.queue.state).frames.iter().map(|f| (f.kind, f.timestamp)).collect();
        assert_eq!(
            resumed,
            vec![(MediaKind::Data, 13), (MediaKind::Video, 0), (MediaKind::Video, 15), (MediaKind::Video, 16)],
            "the current headers, then the keyframe"
        );
    }

    #[test]
    fn readers_end_with_the_publisher_and_status_counts_them() {
        let hub = Hub::new(LIMITS);
        let publisher = hub.publish("LiveApp", "s1", info()).unwrap();
        publisher.send(avc_header());
        let reader = hub.subscribe("LiveApp", "s1").unwrap();
        let status = hub.live_streams();
        assert_eq!(status.len(), 1);
        assert_eq!((status[0].readers, status[0].video, status[0].audio), (1, Some("H.264"), None));
        drop(publisher);
        assert!(hub.live_streams().is_empty());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let received = runtime.block_on(async {
            let mut n = 0;
            while reader.recv().await.is_some() {
                n += 1;
            }
            n
        });
        assert_eq!(received, 1, "the queued header, then the end");
    }

    #[test]
    fn the_gop_cache_is_bounded() {
        let hub = Hub::new(HubLimits { reader_queue_bytes: 100_000, gop_cache_bytes: 250 });
        let publisher = hub.publish("LiveApp", "s1", info()).unwrap();
        publisher.send(video(0, true, 100));
        for ts in 1..10 {
            publisher.send(video(ts, false, 100));
        }
        let reader = hub.subscribe("LiveApp", "s1").unwrap();
        assert_eq!(drain(&reader), vec![(0, true), (1, false)]);
    }
}
