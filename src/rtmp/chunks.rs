//! The RTMP chunk layer pieces that rml_rtmp does not provide: [`ChunkGuard`] bounds what a peer can make the
//! daemon buffer before its bytes reach rml_rtmp's `ServerSession`, and [`chunk_message`] serialises a media
//! message once so that the same [`Bytes`] can be written to every player.
//!
//! The guard parses chunk headers as the RTMP specification and FFmpeg do, and where rml_rtmp's
//! `ChunkDeserializer` has its own reading it follows rml_rtmp, since rml_rtmp consumes the bytes next:
//!
//! * An extended timestamp follows a type 0, 1 or 2 header whose 24-bit timestamp field is `0xFFFFFF`. It
//!   also follows every type 3 header on that chunk stream until a type 0, 1 or 2 header sets the field to
//!   something else, whether the type 3 chunk continues a message or starts a new one.
//! * A chunk carries `min(bytes left in the message, chunk size)` payload bytes. A new chunk size takes effect
//!   on the chunk after the one that completes the SetChunkSize message.
//! * A type 0, 1 or 2 header on a chunk stream whose message is incomplete continues that message.
//!
//! rml_rtmp reassembles into a single buffer shared by all chunk streams. If a chunk on another chunk stream
//! arrives while a message is incomplete, or a header changes the length or type of the incomplete message,
//! its bookkeeping underflows: it panics with "capacity overflow" in release builds (an abort under
//! `panic = "abort"`) and with an arithmetic overflow in debug builds. The guard refuses both with
//! [`GuardError::Interleaved`], so at most one message is ever in progress and its count of remaining bytes is
//! kept beside the chunk stream it belongs to.
//!
//! Until the connection's publish is admitted ([`ChunkGuard::admit_publisher`]) the guard takes only protocol
//! control messages and commands of at most [`UNADMITTED_MESSAGE_SIZE`] bytes, and the length of a message
//! still incomplete after the bytes at hand is reserved from an [`UnadmittedBudget`] shared by every connection
//! until the message is complete: whoever has not proven a credential can make the daemon hold a few KiB, and all
//! of them together no more than the budget, while a message that arrives whole needs none of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

/// The chunk stream ids rampart uses for media it serialises itself (rml_rtmp uses 2..=6).
pub const VIDEO_CSID: u32 = 20;
/// The chunk stream id for audio messages serialised by [`chunk_message`].
pub const AUDIO_CSID: u32 = 21;
/// The chunk stream id for data (metadata) messages serialised by [`chunk_message`].
pub const DATA_CSID: u32 = 22;

/// The chunk size both sides use until a SetChunkSize message changes it.
const INITIAL_CHUNK_SIZE: u32 = 128;
/// The 24-bit timestamp field value that announces a 4-byte extended timestamp.
const EXTENDED_TIMESTAMP: u32 = 0x00FF_FFFF;
/// The message type id of SetChunkSize.
const SET_CHUNK_SIZE: u8 = 1;
/// The longest chunk header: 3-byte basic header, 11-byte message header, 4-byte extended timestamp.
const MAX_HEADER_LEN: usize = 18;
/// The lowest chunk stream id a chunk can carry (0 and 1 select the longer basic headers).
const MIN_CSID: u32 = 2;
/// The highest chunk stream id the 3-byte basic header can express.
const MAX_CSID: u32 = 65599;

/// Limits a [`ChunkGuard`] enforces on the chunk stream a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// The largest chunk size the peer may announce with SetChunkSize.
    pub max_chunk_size: u32,
    /// The largest message length a chunk header may announce.
    pub max_message_size: u32,
    /// The most distinct chunk stream ids the peer may use over the connection.
    pub max_chunk_streams: usize,
}

/// Why a [`ChunkGuard`] refused a peer's bytes; every variant means the connection must be closed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    /// The peer announced a chunk size above [`GuardLimits::max_chunk_size`].
    #[error("peer announced chunk size {0}, above the limit")]
    ChunkSizeTooLarge(u32),
    /// The peer announced a chunk size of 0, or sent a SetChunkSize message shorter than 4 bytes.
    #[error("peer sent an invalid SetChunkSize message")]
    ChunkSizeInvalid,
    /// A chunk header announced a message longer than [`GuardLimits::max_message_size`].
    #[error("peer announced a message of {0} bytes, above the limit")]
    MessageTooLarge(u32),
    /// The peer used more distinct chunk stream ids than [`GuardLimits::max_chunk_streams`].
    #[error("peer used too many chunk streams")]
    TooManyChunkStreams,
    /// A type 1, 2 or 3 chunk arrived on a chunk stream that has not had a type 0 chunk.
    #[error("peer sent a compressed chunk header on a chunk stream without a full header")]
    HeaderBeforeFirstFull,
    /// A chunk interrupted an incomplete message, which rml_rtmp cannot reassemble (see the module docs).
    #[error("peer interleaved chunks of different messages")]
    Interleaved,
    /// A command message that is not AMF0 with a name, a transaction id and a command object
    /// (rml_rtmp 0.8 panics on a command with fewer than three values).
    #[error("peer sent a malformed command")]
    MalformedCommand,
    /// A media or data message (this type id) arrived before a publish was admitted.
    #[error("peer sent a message of type {0} before its publish was admitted")]
    NotAdmitted(u8),
    /// The connections not yet admitted already hold the whole [`UnadmittedBudget`].
    #[error("connections not yet admitted hold the whole buffer budget")]
    BudgetExhausted,
}

/// The largest message a connection may send before its publish is admitted (real commands are a few hundred
/// bytes; Flash's `connect` with every property stays under 1 KiB).
pub const UNADMITTED_MESSAGE_SIZE: u32 = 4096;

/// Bytes that all connections not yet admitted may hold in incomplete messages together, shared by their guards.
#[derive(Debug)]
pub struct UnadmittedBudget {
    /// The most bytes held at once.
    limit: usize,
    /// The bytes held now.
    held: AtomicUsize,
}

impl UnadmittedBudget {
    /// A budget of `limit` bytes, to share between the guards of every connection.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(UnadmittedBudget { limit, held: AtomicUsize::new(0) })
    }

    /// The bytes held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the budget; false (and nothing taken) if they do not fit.
    fn take(&self, bytes: usize) -> bool {
        let fits = |held: usize| held.checked_add(bytes).filter(|total| *total <= self.limit);
        self.held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, fits).is_ok()
    }

    /// Gives back `bytes` taken earlier.
    fn give(&self, bytes: usize) {
        let _ = self.held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| Some(held.saturating_sub(bytes)));
    }
}

/// Message type ids of AMF0 commands and of AMF3-flagged commands (which rml_rtmp reads as AMF0).
const COMMAND_TYPES: [u8; 2] = [17, 20];
/// Message type ids of the protocol control messages (chunk size, abort, acknowledgement, user control,
/// window size, peer bandwidth), taken before admission like commands.
const CONTROL_TYPES: std::ops::RangeInclusive<u8> = 1..=6;
/// The longest command message accepted; real commands are a few hundred bytes.
const MAX_COMMAND_SIZE: u32 = 64 * 1024;

/// Whether a command body is what rml_rtmp can take without panicking: AMF0 values, at least
/// three of them (name, transaction id, command object).
fn command_is_safe(type_id: u8, body: &[u8]) -> bool {
    // rml_rtmp drops the leading 0 of an AMF3-flagged command, as Flash players send it.
    let body = match (type_id, body.first()) {
        (17, Some(0)) => body.get(1..).unwrap_or_default(),
        _ => body,
    };
    let mut cursor = std::io::Cursor::new(body);
    rml_amf0::deserialize(&mut cursor).is_ok_and(|values| values.len() >= 3)
}

/// What the guard remembers of the last header on one chunk stream.
#[derive(Debug, Clone, Copy)]
struct StreamHeader {
    /// Message length, inherited by type 2 and 3 headers.
    length: u32,
    /// Message type id, inherited by type 2 and 3 headers.
    type_id: u8,
    /// Whether the last 24-bit timestamp field was `0xFFFFFF`, so type 3 headers carry an extended timestamp.
    extended: bool,
}

/// The one message whose chunks are being received.
#[derive(Debug, Clone)]
struct Message {
    /// The chunk stream it arrives on.
    csid: u32,
    /// Its length, as announced by its first header.
    length: u32,
    /// Its type id, as announced by its first header.
    type_id: u8,
    /// Payload bytes not yet announced by a chunk header.
    remaining: u32,
    /// The first payload bytes of a SetChunkSize message.
    prefix: [u8; 4],
    /// How many bytes of `prefix` have arrived.
    prefix_len: usize,
    /// The whole body of a command message, checked before rml_rtmp sees it.
    command: Option<Vec<u8>>,
}

impl Message {
    /// Keeps the first 4 payload bytes of a SetChunkSize message, and the body of a command.
    fn collect(&mut self, bytes: &[u8]) {
        if let Some(command) = self.command.as_mut() {
            command.extend_from_slice(bytes);
        }
        if self.type_id != SET_CHUNK_SIZE {
            return;
        }
        for (slot, &byte) in self.prefix.iter_mut().skip(self.prefix_len).zip(bytes) {
            *slot = byte;
            self.prefix_len += 1;
        }
    }
}

/// Where the guard is within the current chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Collecting header bytes into `ChunkGuard::header`.
    Header,
    /// Skipping this many payload bytes of the current chunk.
    Payload(u32),
}

/// A header whose bytes have all arrived.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The chunk stream id from the basic header.
    csid: u32,
    /// Message length and type id, present in type 0 and 1 headers.
    length_and_type: Option<(u32, u8)>,
    /// Whether an extended timestamp followed (or, for type 3, whether one was due).
    extended: bool,
}

/// How far the collected header bytes go.
enum Progress {
    /// The header is this many bytes long in total, as far as its bytes so far tell.
    Need(usize),
    /// The header is complete.
    Done(Header),
}

/// The `connect` property by which an Enhanced RTMP client lists the codecs it takes.
const FOURCC_LIST: &[u8] = b"fourCcList";

/// A streaming pre-scanner for the chunks a peer sends, enforcing [`GuardLimits`] before rml_rtmp buffers them.
#[derive(Debug)]
pub struct ChunkGuard {
    /// The limits to enforce.
    limits: GuardLimits,
    /// Whether the connection's publish was admitted, lifting the limits of the unadmitted.
    admitted: bool,
    /// The budget the messages of an unadmitted connection are reserved from.
    budget: Arc<UnadmittedBudget>,
    /// The bytes this guard holds of `budget` now.
    reserved: usize,
    /// The peer's current chunk size.
    chunk_size: u32,
    /// The last header on every chunk stream the peer has used.
    streams: HashMap<u32, StreamHeader>,
    /// The message in progress, if any.
    message: Option<Message>,
    /// Where the guard is within the current chunk.
    stage: Stage,
    /// The header bytes collected so far.
    header: [u8; MAX_HEADER_LEN],
    /// How many bytes of `header` have arrived.
    header_len: usize,
    /// The error already returned, repeated for any later bytes.
    failed: Option<GuardError>,
    /// Whether a command announced Enhanced RTMP codecs (`fourCcList`, sent with `connect`).
    enhanced: bool,
}

impl ChunkGuard {
    /// Creates a guard for a new, unadmitted connection, with the initial chunk size of 128.
    pub fn new(limits: GuardLimits, budget: Arc<UnadmittedBudget>) -> Self {
        ChunkGuard {
            limits,
            admitted: false,
            budget,
            reserved: 0,
            chunk_size: INITIAL_CHUNK_SIZE,
            streams: HashMap::new(),
            message: None,
            stage: Stage::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            failed: None,
            enhanced: false,
        }
    }

    /// Lifts the limits of the unadmitted: media and messages up to [`GuardLimits::max_message_size`] pass.
    pub fn admit_publisher(&mut self) {
        self.admitted = true;
    }

    /// Whether the peer announced Enhanced RTMP codecs (a `fourCcList` in its `connect`).
    pub fn announced_enhanced_rtmp(&self) -> bool {
        self.enhanced
    }

    /// Scans `bytes` (any split: one byte at a time must work the same as all at once); Err means close the connection.
    pub fn scan(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        // Only a message still incomplete once the bytes at hand are read holds budget: one that
        // arrives whole (a `connect` in one segment) passes even while the budget is spent.
        let result = self.scan_inner(bytes).and_then(|()| match &self.message {
            Some(message) if self.reserved == 0 => self.reserve(message.length),
            _ => Ok(()),
        });
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Consumes `input`, advancing through headers and payloads; stops when it runs out of bytes.
    fn scan_inner(&mut self, mut input: &[u8]) -> Result<(), GuardError> {
        loop {
            match self.stage {
                Stage::Payload(0) => self.end_chunk()?,
                Stage::Payload(left) => {
                    let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let Some((taken, rest)) = input.split_at_checked(n) else { return Ok(()) };
                    if taken.is_empty() {
                        return Ok(());
                    }
                    if let Some(message) = self.message.as_mut() {
                        message.collect(taken);
                    }
                    // `taken` is no longer than `left`, so this does not underflow.
                    self.stage = Stage::Payload(left.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX)));
                    input = rest;
                }
                Stage::Header => match self.progress()? {
                    Progress::Done(header) => self.start_chunk(header)?,
                    Progress::Need(total) => {
                        let free = self.header.get_mut(self.header_len..total).unwrap_or_default();
                        let n = free.len().min(input.len());
                        let Some((taken, rest)) = input.split_at_checked(n) else { return Ok(()) };
                        if taken.is_empty() {
                            return Ok(());
                        }
                        for (slot, &byte) in free.iter_mut().zip(taken) {
                            *slot = byte;
                        }
                        self.header_len += n;
                        input = rest;
                    }
                },
            }
        }
    }

    /// Reads the header bytes collected so far: how long the header is, or the complete header.
    fn progress(&self) -> Result<Progress, GuardError> {
        let bytes = self.header.get(..self.header_len).unwrap_or_default();
        let Some(&first) = bytes.first() else { return Ok(Progress::Need(1)) };
        let fmt = first >> 6;
        let (csid, basic_len) = match first & 0x3F {
            0 => match bytes.get(1) {
                Some(&low) => (64 + u32::from(low), 2),
                None => return Ok(Progress::Need(2)),
            },
            1 => match (bytes.get(1), bytes.get(2)) {
                (Some(&low), Some(&high)) => (64 + u32::from(low) + (u32::from(high) << 8), 3),
                _ => return Ok(Progress::Need(3)),
            },
            id => (u32::from(id), 1),
        };
        let known = self.admit(fmt, csid)?;

        let fields_len = match fmt {
            0 => 11,
            1 => 7,
            2 => 3,
            _ => 0,
        };
        let Some(fields) = bytes.get(basic_len..basic_len + fields_len) else {
            return Ok(Progress::Need(basic_len + fields_len));
        };
        let extended = match fields.get(..3) {
            Some(timestamp) => be(timestamp) == EXTENDED_TIMESTAMP,
            None => known.is_some_and(|stream| stream.extended),
        };
        let length_and_type = match (fields.get(3..6), fields.get(6)) {
            (Some(length), Some(&type_id)) => Some((be(length), type_id)),
            _ => None,
        };
        let total = basic_len + fields_len + if extended { 4 } else { 0 };
        if bytes.len() < total {
            return Ok(Progress::Need(total));
        }
        Ok(Progress::Done(Header { csid, length_and_type, extended }))
    }

    /// Checks that a chunk of header type `fmt` may start on `csid`, returning what is known of that stream.
    fn admit(&self, fmt: u8, csid: u32) -> Result<Option<StreamHeader>, GuardError> {
        if self.message.as_ref().is_some_and(|message| message.csid != csid) {
            return Err(GuardError::Interleaved);
        }
        let known = self.streams.get(&csid).copied();
        if known.is_none() {
            if fmt != 0 {
                return Err(GuardError::HeaderBeforeFirstFull);
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(GuardError::TooManyChunkStreams);
            }
        }
        Ok(known)
    }

    /// Applies a complete header: checks the message it announces and sets up the chunk's payload.
    fn start_chunk(&mut self, header: Header) -> Result<(), GuardError> {
        let known = self.streams.get(&header.csid).copied();
        let (length, type_id) = match (header.length_and_type, known) {
            (Some(length_and_type), _) => length_and_type,
            (None, Some(stream)) => (stream.length, stream.type_id),
            (None, None) => return Err(GuardError::HeaderBeforeFirstFull),
        };
        let command = COMMAND_TYPES.contains(&type_id);
        if !self.admitted && !command && !CONTROL_TYPES.contains(&type_id) {
            return Err(GuardError::NotAdmitted(type_id));
        }
        let max = match (self.admitted, command) {
            (false, _) => UNADMITTED_MESSAGE_SIZE,
            (true, true) => MAX_COMMAND_SIZE,
            (true, false) => self.limits.max_message_size,
        };
        if length > max {
            return Err(GuardError::MessageTooLarge(length));
        }
        self.streams.insert(header.csid, StreamHeader { length, type_id, extended: header.extended });

        let mut message = match self.message.take() {
            Some(message) if message.csid == header.csid && message.length == length && message.type_id == type_id => {
                message
            }
            Some(_) => return Err(GuardError::Interleaved),
            None => {
                let command = command.then(|| Vec::with_capacity(length as usize));
                Message {
                    csid: header.csid,
                    length,
                    type_id,
                    remaining: length,
                    prefix: [0; 4],
                    prefix_len: 0,
                    command,
                }
            }
        };
        let payload = message.remaining.min(self.chunk_size);
        message.remaining -= payload;
        self.message = Some(message);
        self.stage = Stage::Payload(payload);
        self.header_len = 0;
        Ok(())
    }

    /// Reserves the `length` of the message in progress from the budget of the unadmitted, until
    /// it is complete.
    fn reserve(&mut self, length: u32) -> Result<(), GuardError> {
        if self.admitted {
            return Ok(());
        }
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if !self.budget.take(length) {
            return Err(GuardError::BudgetExhausted);
        }
        self.reserved = length;
        Ok(())
    }

    /// Gives back what the message just completed reserved.
    fn release(&mut self) {
        self.budget.give(std::mem::take(&mut self.reserved));
    }

    /// Finishes a chunk whose payload has been skipped; applies a completed SetChunkSize message.
    fn end_chunk(&mut self) -> Result<(), GuardError> {
        self.stage = Stage::Header;
        if self.message.as_ref().is_some_and(|message| message.remaining == 0) {
            self.release();
        }
        match self.message.take() {
            Some(message) if message.remaining > 0 => self.message = Some(message),
            Some(message) if message.type_id == SET_CHUNK_SIZE => {
                if message.prefix_len < message.prefix.len() {
                    return Err(GuardError::ChunkSizeInvalid);
                }
                let size = u32::from_be_bytes(message.prefix) & 0x7FFF_FFFF;
                if size == 0 {
                    return Err(GuardError::ChunkSizeInvalid);
                }
                if size > self.limits.max_chunk_size {
                    return Err(GuardError::ChunkSizeTooLarge(size));
                }
                self.chunk_size = size;
            }
            Some(Message { type_id, command: Some(body), .. }) => {
                if !command_is_safe(type_id, &body) {
                    return Err(GuardError::MalformedCommand);
                }
                self.enhanced |= body.windows(FOURCC_LIST.len()).any(|w| w == FOURCC_LIST);
            }
            _ => {}
        }
        Ok(())
    }
}

impl Drop for ChunkGuard {
    /// A connection that closes mid-message gives its reservation back.
    fn drop(&mut self) {
        self.release();
    }
}

/// Reads up to 4 bytes as a big-endian number.
fn be(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |value, &byte| (value << 8) | u32::from(byte))
}

/// The low 24 bits of `value`, big-endian.
fn be24(value: u32) -> [u8; 3] {
    let [_, high, middle, low] = value.to_be_bytes();
    [high, middle, low]
}

/// Appends the basic header for chunk type `fmt` on `csid` (2..=65599) in its shortest form.
fn push_basic_header(out: &mut Vec<u8>, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match (u8::try_from(csid), csid.checked_sub(64)) {
        (Ok(id), _) if id < 64 => out.push(fmt | id),
        (_, Some(offset)) => {
            let [low, high, ..] = offset.to_le_bytes();
            if high == 0 {
                out.extend_from_slice(&[fmt, low]);
            } else {
                out.extend_from_slice(&[fmt | 1, low, high]);
            }
        }
        (_, None) => {}
    }
}

/// Serialises a message as a type-0 chunk followed by type-3 continuation chunks.
///
/// The type 0 header carries the absolute timestamp, so the result does not depend on any earlier header on
/// the chunk stream; a timestamp of `0xFFFFFF` or more goes in an extended timestamp, repeated after every
/// type 3 header as rml_rtmp and FFmpeg expect. `chunk_size` must be the chunk size announced to the player.
///
/// # Panics
///
/// If `csid` is outside 2..=65599, `chunk_size` is 0, or `payload` is longer than 16 777 215 bytes.
pub fn chunk_message(
    csid: u32,
    type_id: u8,
    message_stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: usize,
) -> Bytes {
    assert!((MIN_CSID..=MAX_CSID).contains(&csid), "chunk stream id {csid} is outside 2..=65599");
    assert!(chunk_size > 0, "chunk size must be positive");
    let length = match u32::try_from(payload.len()) {
        Ok(length) if length <= 0x00FF_FFFF => length,
        _ => panic!("an RTMP message of {} bytes does not fit a 24-bit length", payload.len()),
    };
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    let extended_len: usize = if extended { 4 } else { 0 };
    let basic_len = match csid {
        ..64 => 1,
        64..320 => 2,
        _ => 3,
    };
    let continuations = payload.len().div_ceil(chunk_size).saturating_sub(1);
    let capacity = (basic_len + extended_len)
        .saturating_mul(continuations)
        .saturating_add(basic_len + 11 + extended_len + payload.len());

    let mut out = Vec::with_capacity(capacity);
    push_basic_header(&mut out, 0, csid);
    out.extend_from_slice(&be24(timestamp.min(EXTENDED_TIMESTAMP)));
    out.extend_from_slice(&be24(length));
    out.push(type_id);
    out.extend_from_slice(&message_stream_id.to_le_bytes());
    if extended {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    let mut chunks = payload.chunks(chunk_size);
    if let Some(first) = chunks.next() {
        out.extend_from_slice(first);
    }
    for chunk in chunks {
        push_basic_header(&mut out, 3, csid);
        if extended {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        out.extend_from_slice(chunk);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;

    use crate::test_rng::XorShift;

    fn limits() -> GuardLimits {
        GuardLimits { max_chunk_size: 65_536, max_message_size: 1 << 20, max_chunk_streams: 16 }
    }

    /// A guard whose publish was admitted, with a budget of its own.
    fn admitted(limits: GuardLimits) -> ChunkGuard {
        let mut guard = ChunkGuard::new(limits, UnadmittedBudget::new(0));
        guard.admit_publisher();
        guard
    }

    /// An AMF0 command message of `len` bytes (a name, a transaction id, a string filling the rest).
    fn command(csid: u32, len: usize) -> Bytes {
        use rml_amf0::Amf0Value::{Number, Utf8String};
        let fill = "x".repeat(len - 22);
        let body = rml_amf0::serialize(&vec![Utf8String("connect".into()), Number(1.0), Utf8String(fill)]).unwrap();
        assert_eq!(body.len(), len);
        chunk_message(csid, 20, 0, 0, &body, 128)
    }

    #[test]
    fn before_admission_only_small_commands_and_control_messages_pass() {
        let budget = UnadmittedBudget::new(1 << 20);
        let mut guard = ChunkGuard::new(limits(), budget.clone());
        let mut bytes = set_chunk_size(128, 128).to_vec();
        bytes.extend_from_slice(&chunk_message(2, 3, 0, 0, &[0, 0, 0, 9], 128));
        bytes.extend_from_slice(&command(3, UNADMITTED_MESSAGE_SIZE as usize));
        assert_eq!(guard.scan(&bytes), Ok(()));
        assert_eq!(budget.held(), 0, "complete messages hold nothing");
        for type_id in [8, 9, 15, 18, 22] {
            let mut guard = ChunkGuard::new(limits(), budget.clone());
            // Refused on the header, before any payload: an 8 MiB video message holds nothing.
            let header = full_header(4, 0, 8 << 20, type_id, 1);
            assert_eq!(guard.scan(&header), Err(GuardError::NotAdmitted(type_id)));
            let mut guard = ChunkGuard::new(limits(), budget.clone());
            assert_eq!(
                guard.scan(&chunk_message(4, type_id, 1, 0, &[1; 10], 128)),
                Err(GuardError::NotAdmitted(type_id))
            );
        }
        let mut guard = ChunkGuard::new(limits(), budget.clone());
        let size = UNADMITTED_MESSAGE_SIZE + 1;
        assert_eq!(guard.scan(&full_header(3, 0, size, 20, 0)), Err(GuardError::MessageTooLarge(size)));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn admission_lifts_the_limits_of_the_unadmitted() {
        let budget = UnadmittedBudget::new(UNADMITTED_MESSAGE_SIZE as usize);
        let mut guard = ChunkGuard::new(limits(), budget.clone());
        guard.scan(&command(3, 300)).unwrap();
        guard.admit_publisher();
        let mut bytes = chunk_message(4, 9, 1, 0, &[1; 100_000], 128).to_vec();
        bytes.extend_from_slice(&command(3, 10_000));
        assert_eq!(guard.scan(&bytes), Ok(()));
        assert_eq!(
            guard.scan(&full_header(4, 0, (1 << 20) + 1, 9, 1)),
            Err(GuardError::MessageTooLarge((1 << 20) + 1))
        );
        assert_eq!(budget.held(), 0, "an admitted connection takes nothing from the budget");
    }

    #[test]
    fn incomplete_messages_of_the_unadmitted_share_one_budget() {
        let budget = UnadmittedBudget::new(3 * 1000);
        let partial = |len: usize| command(3, len)[..20].to_vec();
        let mut holders: Vec<ChunkGuard> = (0..3).map(|_| ChunkGuard::new(limits(), budget.clone())).collect();
        for guard in &mut holders {
            assert_eq!(guard.scan(&partial(1000)), Ok(()));
        }
        assert_eq!(budget.held(), 3000);
        let mut late = ChunkGuard::new(limits(), budget.clone());
        assert_eq!(late.scan(&partial(1000)), Err(GuardError::BudgetExhausted));
        let mut whole_in_one = ChunkGuard::new(limits(), budget.clone());
        assert_eq!(whole_in_one.scan(&command(3, 1000)), Ok(()), "a message that arrives whole needs no budget");
        // A holder that completes its message gives its share back, and so does one that closes.
        let whole = command(3, 1000);
        assert_eq!(holders[0].scan(&whole[20..]), Ok(()));
        assert_eq!(budget.held(), 2000);
        holders.truncate(1);
        assert_eq!(budget.held(), 0);
        let mut next = ChunkGuard::new(limits(), budget.clone());
        assert_eq!(next.scan(&whole), Ok(()));
        drop(late);
        assert_eq!(budget.held(), 0);
    }

    /// True when the guard has consumed whole chunks and no message is incomplete.
    fn at_boundary(guard: &ChunkGuard) -> bool {
        guard.stage == Stage::Header && guard.header_len == 0 && guard.message.is_none()
    }

    fn scan_whole(limits: GuardLimits, bytes: &[u8]) -> (Result<(), GuardError>, ChunkGuard) {
        let mut guard = admitted(limits);
        (guard.scan(bytes), guard)
    }

    fn scan_bytewise(limits: GuardLimits, bytes: &[u8]) -> (Result<(), GuardError>, ChunkGuard) {
        let mut guard = admitted(limits);
        for byte in bytes {
            if let Err(error) = guard.scan(std::slice::from_ref(byte)) {
                return (Err(error), guard);
            }
        }
        (Ok(()), guard)
    }

    /// Feeds `bytes` in random slices, including empty ones.
    fn scan_random(limits: GuardLimits, bytes: &[u8], seed: u64) -> (Result<(), GuardError>, ChunkGuard) {
        let mut rng = XorShift(seed);
        let mut guard = admitted(limits);
        let mut rest = bytes;
        while !rest.is_empty() {
            let (slice, tail) = rest.split_at(rng.below(rest.len().min(300) + 1));
            if let Err(error) = guard.scan(slice) {
                return (Err(error), guard);
            }
            rest = tail;
        }
        (Ok(()), guard)
    }

    /// Asserts the guard accepts `bytes` whole, byte by byte and in random slices, ending on a message boundary
    /// with the chunk size `chunk_size`.
    fn assert_passes(bytes: &[u8], chunk_size: u32) {
        for seed in [1, 0x9E37_79B9_7F4A_7C15, 42, 7] {
            let (result, guard) = scan_random(limits(), bytes, seed);
            assert_eq!(result, Ok(()), "random slices, seed {seed}");
            assert!(at_boundary(&guard) && guard.chunk_size == chunk_size, "random slices, seed {seed}");
        }
        for (result, guard) in [scan_whole(limits(), bytes), scan_bytewise(limits(), bytes)] {
            assert_eq!(result, Ok(()));
            assert!(at_boundary(&guard));
            assert_eq!(guard.chunk_size, chunk_size);
        }
    }

    /// Deserialises `bytes` with rml_rtmp, applying SetChunkSize messages as its ServerSession does.
    fn rml_messages(bytes: &[u8], chunk_size: usize) -> Vec<MessagePayload> {
        let mut deserializer = ChunkDeserializer::new();
        deserializer.set_max_chunk_size(chunk_size).unwrap();
        let mut messages = Vec::new();
        let mut input = bytes;
        while let Some(message) = deserializer.get_next_message(input).unwrap() {
            if message.type_id == SET_CHUNK_SIZE {
                let size = u32::from_be_bytes(message.data[..4].try_into().unwrap());
                deserializer.set_max_chunk_size(size as usize).unwrap();
            }
            messages.push(message);
            input = &[];
        }
        messages
    }

    fn payload(type_id: u8, message_stream_id: u32, timestamp: u32, data: Vec<u8>) -> MessagePayload {
        MessagePayload { timestamp: RtmpTimestamp::new(timestamp), type_id, message_stream_id, data: data.into() }
    }

    /// A stream as rml_rtmp's ChunkSerializer writes it, with the messages it carries and the first byte of
    /// every packet, which holds the header type of the packet's first chunk.
    struct Serialized {
        bytes: Vec<u8>,
        messages: Vec<MessagePayload>,
        first_bytes: Vec<u8>,
        chunk_size: u32,
    }

    impl Serialized {
        fn new() -> (Self, ChunkSerializer) {
            let serialized =
                Serialized { bytes: Vec::new(), messages: Vec::new(), first_bytes: Vec::new(), chunk_size: 128 };
            (serialized, ChunkSerializer::new())
        }

        fn push(&mut self, serializer: &mut ChunkSerializer, message: MessagePayload, force: bool, drop: bool) {
            let packet = serializer.serialize(&message, force, drop).unwrap();
            self.first_bytes.push(packet.bytes[0]);
            self.bytes.extend_from_slice(&packet.bytes);
            self.messages.push(message);
        }

        fn set_chunk_size(&mut self, serializer: &mut ChunkSerializer, size: u32, timestamp: u32) {
            let packet = serializer.set_max_chunk_size(size, RtmpTimestamp::new(timestamp)).unwrap();
            self.first_bytes.push(packet.bytes[0]);
            self.bytes.extend_from_slice(&packet.bytes);
            self.messages.push(payload(SET_CHUNK_SIZE, 0, timestamp, size.to_be_bytes().to_vec()));
            self.chunk_size = size;
        }

        fn header_types(&self) -> [usize; 4] {
            let mut counts = [0; 4];
            for byte in &self.first_bytes {
                counts[usize::from(byte >> 6)] += 1;
            }
            counts
        }
    }

    /// A publisher-like stream: metadata, interleaved-by-message audio and video of varied sizes, timestamps
    /// that cross into extended territory and jump backwards, and three chunk size changes.
    fn serializer_stream(seed: u64, messages: usize) -> Serialized {
        let mut rng = XorShift(seed);
        let (mut out, mut serializer) = Serialized::new();
        let sizes = [1, 2, 50, 59, 60, 61, 127, 128, 129, 255, 256, 300, 1000, 4095, 4096, 4097, 9000];
        let mut video_ts = 0u32;
        let mut audio_ts = 0u32;
        out.push(&mut serializer, payload(18, 1, 0, rng.bytes(200)), true, false);
        for i in 0..messages {
            match i {
                10 => out.set_chunk_size(&mut serializer, 4096, video_ts),
                40 => out.set_chunk_size(&mut serializer, 60, video_ts),
                60 => {
                    video_ts = 0x00FF_FF00;
                    audio_ts = 0x00FF_FF00;
                }
                80 => out.set_chunk_size(&mut serializer, 1000, video_ts),
                100 => {
                    video_ts = 0x7000_0000;
                    audio_ts = 0x10;
                }
                _ => {}
            }
            match rng.below(8) {
                0..=2 => {
                    // Video of a steady size, so the same length often repeats.
                    video_ts = video_ts.wrapping_add(33);
                    let len = if rng.below(3) == 0 { sizes[rng.below(sizes.len())] } else { 700 };
                    out.push(&mut serializer, payload(9, 1, video_ts, rng.bytes(len)), false, rng.below(4) == 0);
                }
                3..=5 => {
                    // Audio of constant size and cadence: type 2 and type 3 headers.
                    audio_ts = audio_ts.wrapping_add(23);
                    out.push(&mut serializer, payload(8, 1, audio_ts, rng.bytes(50)), false, false);
                }
                6 => {
                    let type_id = [18, 15, 4, 5, 3][rng.below(5)];
                    let len = sizes[rng.below(sizes.len())];
                    let message = payload(type_id, rng.below(3) as u32, video_ts, rng.bytes(len));
                    out.push(&mut serializer, message, false, false);
                }
                _ => {
                    // Another message stream id forces a type 0 header.
                    let len = sizes[rng.below(sizes.len())];
                    let message = payload(9, 5, video_ts, rng.bytes(len));
                    out.push(&mut serializer, message, rng.below(2) == 0, false);
                }
            }
        }
        // Three video messages 0x1000000 apart: type 1 then type 3 headers with extended timestamp deltas.
        for step in 1..=3 {
            let timestamp = video_ts.wrapping_add(step * 0x0100_0000);
            out.push(&mut serializer, payload(9, 1, timestamp, vec![step as u8; 1500]), false, false);
        }
        out
    }

    #[test]
    fn checking_random_command_bodies_never_panics() {
        let mut rng = XorShift(0x0bad_5eed_1234_5678);
        let markers = [0x00u8, 0x01, 0x02, 0x03, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x11];
        for _ in 0..5_000 {
            let len = rng.below(64);
            let body: Vec<u8> = (0..len)
                .map(|_| if rng.below(3) == 0 { markers[rng.below(markers.len())] } else { rng.next() as u8 })
                .collect();
            let _ = command_is_safe(20, &body);
            let _ = command_is_safe(17, &body);
        }
    }

    #[test]
    fn a_connect_with_a_fourcc_list_announces_enhanced_rtmp() {
        use rml_amf0::Amf0Value::{Number, Object, StrictArray, Utf8String};
        let connect = |properties: Vec<(&str, rml_amf0::Amf0Value)>| {
            let object = Object(properties.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let body = rml_amf0::serialize(&vec![Utf8String("connect".into()), Number(1.0), object]).unwrap();
            chunk_message(3, 20, 0, 0, &body, 128)
        };
        let mut legacy = admitted(limits());
        legacy.scan(&connect(vec![("app", Utf8String("LiveApp".into()))])).unwrap();
        assert!(!legacy.announced_enhanced_rtmp());
        let mut enhanced = admitted(limits());
        let list = StrictArray(vec![Utf8String("Opus".into()), Utf8String("hvc1".into())]);
        enhanced.scan(&connect(vec![("app", Utf8String("LiveApp".into())), ("fourCcList", list)])).unwrap();
        assert!(enhanced.announced_enhanced_rtmp());
    }

    #[test]
    fn commands_rml_rtmp_would_panic_on_are_refused() {
        use rml_amf0::Amf0Value::{Null, Number, Utf8String};
        let amf = |values: Vec<rml_amf0::Amf0Value>| rml_amf0::serialize(&values).unwrap();
        let two_values = amf(vec![Utf8String("connect".into()), Number(1.0)]);
        let three_values = amf(vec![Utf8String("connect".into()), Number(1.0), Null]);
        for (type_id, body, expected) in [
            (20, &two_values, Err(GuardError::MalformedCommand)),
            (17, &two_values, Err(GuardError::MalformedCommand)),
            (20, &three_values, Ok(())),
            (17, &[&[0u8][..], &three_values].concat(), Ok(())),
            (20, &vec![0x02, 0xff], Err(GuardError::MalformedCommand)),
        ] {
            let mut guard = admitted(limits());
            assert_eq!(guard.scan(&chunk_message(3, type_id, 0, 0, body, 128)), expected, "type {type_id}");
        }
    }

    #[test]
    fn rml_serializer_stream_passes_whole_bytewise_and_in_random_slices() {
        for seed in [1, 2, 3] {
            let stream = serializer_stream(seed, 160);
            let [full, delta, delta_only, empty] = stream.header_types();
            assert!(full > 0 && delta > 0 && delta_only > 0 && empty > 0, "{:?}", stream.header_types());
            // The last message starts with a type 3 header followed by an extended timestamp.
            assert_eq!(stream.first_bytes.last(), Some(&0xC4));
            assert_eq!(rml_messages(&stream.bytes, 128), stream.messages, "rml_rtmp reads its own stream back");
            assert_passes(&stream.bytes, stream.chunk_size);
        }
    }

    #[test]
    fn rml_serializer_stream_passes_split_in_two_at_every_position() {
        let stream = serializer_stream(9, 45);
        assert!(stream.bytes.len() > 10_000, "{}", stream.bytes.len());
        assert_eq!(rml_messages(&stream.bytes, 128), stream.messages);
        let bytes = &stream.bytes[..10_000];
        let mut whole = admitted(limits());
        whole.scan(bytes).unwrap();
        for split in 0..=bytes.len() {
            let mut guard = admitted(limits());
            guard.scan(&bytes[..split]).unwrap();
            guard.scan(&bytes[split..]).unwrap();
            assert_eq!(
                (guard.stage, guard.header_len, guard.chunk_size, guard.message.as_ref().map(|m| m.remaining)),
                (whole.stage, whole.header_len, whole.chunk_size, whole.message.as_ref().map(|m| m.remaining)),
                "split at {split}"
            );
        }
    }

    #[test]
    fn guard_tracks_set_chunk_size_from_rml_serializer() {
        let (mut stream, mut serializer) = Serialized::new();
        stream.set_chunk_size(&mut serializer, 4096, 0);
        // 4000 bytes in one chunk: misread at 128, the guard would not end on a boundary.
        stream.push(&mut serializer, payload(9, 1, 0, vec![7; 4000]), false, false);
        let mut guard = admitted(limits());
        guard.scan(&stream.bytes).unwrap();
        assert!(at_boundary(&guard));
        assert_eq!(guard.chunk_size, 4096);
    }

    fn set_chunk_size(size: u32, chunk_size: usize) -> Bytes {
        chunk_message(2, SET_CHUNK_SIZE, 0, 0, &size.to_be_bytes(), chunk_size)
    }

    #[test]
    fn refuses_set_chunk_size_above_limit() {
        let limits = GuardLimits { max_chunk_size: 4096, ..limits() };
        let (result, guard) = scan_whole(limits, &set_chunk_size(4096, 128));
        assert_eq!(result, Ok(()));
        assert_eq!(guard.chunk_size, 4096);
        for scan in [scan_whole, scan_bytewise] {
            assert_eq!(scan(limits, &set_chunk_size(4097, 128)).0, Err(GuardError::ChunkSizeTooLarge(4097)));
        }
        // The top bit is ignored, as the specification says.
        assert_eq!(scan_whole(limits, &set_chunk_size(0x8000_1000, 128)).1.chunk_size, 4096);
        assert_eq!(
            scan_whole(limits, &set_chunk_size(0xFFFF_FFFF, 128)).0,
            Err(GuardError::ChunkSizeTooLarge(0x7FFF_FFFF))
        );
    }

    #[test]
    fn refuses_set_chunk_size_of_zero_or_shorter_than_four_bytes() {
        assert_eq!(scan_whole(limits(), &set_chunk_size(0, 128)).0, Err(GuardError::ChunkSizeInvalid));
        assert_eq!(scan_whole(limits(), &set_chunk_size(0x8000_0000, 128)).0, Err(GuardError::ChunkSizeInvalid));
        for short in [&[][..], &[0, 0, 16][..]] {
            let bytes = chunk_message(2, SET_CHUNK_SIZE, 0, 0, short, 128);
            assert_eq!(scan_bytewise(limits(), &bytes).0, Err(GuardError::ChunkSizeInvalid));
        }
        // Longer payloads are read like rml_rtmp reads them: the first four bytes count.
        let bytes = chunk_message(2, SET_CHUNK_SIZE, 0, 0, &[0, 0, 1, 0, 9, 9], 128);
        assert_eq!(scan_whole(limits(), &bytes).1.chunk_size, 256);
    }

    #[test]
    fn set_chunk_size_payload_split_across_chunks() {
        let mut bytes = set_chunk_size(1, 128).to_vec();
        bytes.extend_from_slice(&set_chunk_size(300, 1));
        bytes.extend_from_slice(&chunk_message(VIDEO_CSID, 9, 1, 0, &[5; 700], 300));
        assert_passes(&bytes, 300);
        assert_eq!(rml_messages(&bytes, 128).len(), 3);
    }

    /// A type 0 header without payload.
    fn full_header(csid: u32, timestamp: u32, length: u32, type_id: u8, message_stream_id: u32) -> Vec<u8> {
        let bytes = chunk_message(csid, type_id, message_stream_id, timestamp, &[], 128);
        let mut header = bytes.to_vec();
        let at = header.len() - if timestamp >= EXTENDED_TIMESTAMP { 12 } else { 8 };
        header[at..at + 3].copy_from_slice(&be24(length));
        header
    }

    /// A type 1 header without payload.
    fn delta_header(csid: u32, delta: u32, length: u32, type_id: u8) -> Vec<u8> {
        let mut header = Vec::new();
        push_basic_header(&mut header, 1, csid);
        header.extend_from_slice(&be24(delta.min(EXTENDED_TIMESTAMP)));
        header.extend_from_slice(&be24(length));
        header.push(type_id);
        if delta >= EXTENDED_TIMESTAMP {
            header.extend_from_slice(&delta.to_be_bytes());
        }
        header
    }

    /// A type 2 header without payload.
    fn delta_only_header(csid: u32, delta: u32) -> Vec<u8> {
        let mut header = Vec::new();
        push_basic_header(&mut header, 2, csid);
        header.extend_from_slice(&be24(delta.min(EXTENDED_TIMESTAMP)));
        if delta >= EXTENDED_TIMESTAMP {
            header.extend_from_slice(&delta.to_be_bytes());
        }
        header
    }

    /// A type 3 header, with the extended timestamp `extended` if given.
    fn empty_header(csid: u32, extended: Option<u32>) -> Vec<u8> {
        let mut header = Vec::new();
        push_basic_header(&mut header, 3, csid);
        if let Some(timestamp) = extended {
            header.extend_from_slice(&timestamp.to_be_bytes());
        }
        header
    }

    #[test]
    fn refuses_message_length_above_limit_in_type_0_and_type_1_headers() {
        let limits = GuardLimits { max_message_size: 1000, ..limits() };
        assert_eq!(scan_whole(limits, &full_header(4, 0, 1000, 9, 1)).0, Ok(()));
        for scan in [scan_whole, scan_bytewise] {
            // Refused as soon as the header is complete, before any payload.
            assert_eq!(scan(limits, &full_header(4, 0, 1001, 9, 1)).0, Err(GuardError::MessageTooLarge(1001)));
            assert_eq!(
                scan(limits, &full_header(4, 0x0100_0000, 0xFF_FFFF, 9, 1)).0,
                Err(GuardError::MessageTooLarge(0xFF_FFFF))
            );
            let mut bytes = chunk_message(4, 9, 1, 0, &[1; 10], 128).to_vec();
            bytes.extend_from_slice(&delta_header(4, 33, 1001, 9));
            assert_eq!(scan(limits, &bytes).0, Err(GuardError::MessageTooLarge(1001)));
        }
    }

    #[test]
    fn refuses_more_chunk_streams_than_the_limit() {
        let limits = GuardLimits { max_chunk_streams: 3, ..limits() };
        let mut bytes = Vec::new();
        for csid in [3, 4, 300, 3, 4, 300] {
            bytes.extend_from_slice(&chunk_message(csid, 8, 1, 0, &[1; 10], 128));
        }
        assert_passes_with(limits, &bytes);
        bytes.extend_from_slice(&chunk_message(5, 8, 1, 0, &[1; 10], 128));
        for scan in [scan_whole, scan_bytewise] {
            assert_eq!(scan(limits, &bytes).0, Err(GuardError::TooManyChunkStreams));
        }
    }

    fn assert_passes_with(limits: GuardLimits, bytes: &[u8]) {
        for (result, guard) in [scan_whole(limits, bytes), scan_bytewise(limits, bytes)] {
            assert_eq!(result, Ok(()));
            assert!(at_boundary(&guard));
        }
    }

    #[test]
    fn refuses_compressed_headers_on_unknown_chunk_streams() {
        let known = chunk_message(4, 9, 1, 0, &[1; 10], 128).to_vec();
        for csid in [3, 5, 64, 319, 320, 65599] {
            for header in [empty_header(csid, None), delta_only_header(csid, 10), delta_header(csid, 10, 5, 9)] {
                let mut bytes = known.clone();
                bytes.extend_from_slice(&header);
                for scan in [scan_whole, scan_bytewise] {
                    assert_eq!(scan(limits(), &bytes).0, Err(GuardError::HeaderBeforeFirstFull), "csid {csid}");
                }
            }
        }
        // Refused on the basic header alone, as rml_rtmp does.
        assert_eq!(scan_whole(limits(), &[0xC3]).0, Err(GuardError::HeaderBeforeFirstFull));
        assert_eq!(scan_whole(limits(), &[0x40, 7]).0, Err(GuardError::HeaderBeforeFirstFull));
    }

    #[test]
    fn refuses_interleaved_and_interrupted_messages() {
        let video = chunk_message(4, 9, 1, 0, &[1; 200], 128);
        let first_chunk = &video[..12 + 128];
        let audio = chunk_message(5, 8, 1, 0, &[2; 10], 128);
        // A chunk of another message in the middle of the video message.
        let mut bytes = first_chunk.to_vec();
        bytes.extend_from_slice(&audio);
        bytes.extend_from_slice(&video[12 + 128..]);
        for scan in [scan_whole, scan_bytewise] {
            assert_eq!(scan(limits(), &bytes).0, Err(GuardError::Interleaved));
        }
        // A header on the same chunk stream that changes the length or the type.
        for header in [full_header(4, 0, 300, 9, 1), delta_header(4, 0, 200, 8), full_header(4, 0, 5, 1, 0)] {
            let mut bytes = first_chunk.to_vec();
            bytes.extend_from_slice(&header);
            assert_eq!(scan_whole(limits(), &bytes).0, Err(GuardError::Interleaved));
        }
    }

    #[test]
    fn full_and_delta_headers_continuing_a_message_pass_like_in_rml() {
        let video = chunk_message(4, 9, 1, 0, &[1; 300], 128);
        let (first, rest) = video.split_at(12 + 128);
        for header in [full_header(4, 0, 300, 9, 1), delta_header(4, 0, 300, 9), delta_only_header(4, 0)] {
            let mut bytes = first.to_vec();
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(&rest[1..]);
            assert_passes(&bytes, 128);
            let messages = rml_messages(&bytes, 128);
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].data, vec![1; 300]);
        }
    }

    #[test]
    fn extended_timestamp_rules_match_rml() {
        // (stream, number of messages): built by hand, read by both the guard and rml_rtmp.
        let mut cases = Vec::new();

        // A type 3 header starting a new message after an extended type 0 header carries the extension.
        let mut bytes = full_header(4, 0x0100_0000, 5, 9, 1);
        bytes.extend_from_slice(&[1; 5]);
        bytes.extend_from_slice(&empty_header(4, Some(0x0100_0000)));
        bytes.extend_from_slice(&[2; 5]);
        cases.push((bytes, 2));

        // A type 2 header with a small delta ends the extension for the following type 3 headers.
        let mut bytes = full_header(4, 0x0100_0000, 5, 9, 1);
        bytes.extend_from_slice(&[1; 5]);
        bytes.extend_from_slice(&delta_only_header(4, 40));
        bytes.extend_from_slice(&[2; 5]);
        bytes.extend_from_slice(&empty_header(4, None));
        bytes.extend_from_slice(&[3; 5]);
        cases.push((bytes, 3));

        // An extended delta in a type 1 header carries over to continuation and new-message type 3 headers.
        let mut bytes = full_header(4, 10, 5, 9, 1);
        bytes.extend_from_slice(&[1; 5]);
        bytes.extend_from_slice(&delta_header(4, 0x0200_0000, 200, 9));
        bytes.extend_from_slice(&[2; 128]);
        bytes.extend_from_slice(&empty_header(4, Some(0x0200_0000)));
        bytes.extend_from_slice(&[2; 72]);
        bytes.extend_from_slice(&empty_header(4, Some(0x0200_0000)));
        bytes.extend_from_slice(&[3; 128]);
        bytes.extend_from_slice(&empty_header(4, Some(0x0200_0000)));
        bytes.extend_from_slice(&[3; 72]);
        cases.push((bytes, 3));

        // The 2- and 3-byte basic headers.
        let mut bytes = full_header(300, 0x00FF_FFFF, 3, 8, 1);
        bytes.extend_from_slice(&[1; 3]);
        bytes.extend_from_slice(&empty_header(300, Some(0x00FF_FFFF)));
        bytes.extend_from_slice(&[2; 3]);
        bytes.extend_from_slice(&full_header(70, 7, 0, 8, 1));
        bytes.extend_from_slice(&empty_header(70, None));
        cases.push((bytes, 4));

        for (bytes, count) in cases {
            assert_eq!(rml_messages(&bytes, 128).len(), count);
            assert_passes(&bytes, 128);
        }
    }

    #[test]
    fn zero_length_messages_take_no_payload() {
        let mut bytes = chunk_message(4, 9, 1, 5, &[], 128).to_vec();
        bytes.extend_from_slice(&empty_header(4, None));
        bytes.extend_from_slice(&chunk_message(4, 9, 1, 6, &[1], 128));
        assert_eq!(rml_messages(&bytes, 128).len(), 3);
        assert_passes(&bytes, 128);
    }

    #[test]
    fn errors_are_sticky() {
        let mut guard = admitted(limits());
        assert_eq!(guard.scan(&[0xC3]), Err(GuardError::HeaderBeforeFirstFull));
        assert_eq!(guard.scan(&chunk_message(3, 9, 1, 0, &[1], 128)), Err(GuardError::HeaderBeforeFirstFull));
    }

    #[test]
    fn random_garbage_never_panics_and_any_split_gives_the_same_verdict() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let tight = GuardLimits { max_chunk_size: 300, max_message_size: 2000, max_chunk_streams: 4 };
        let valid = chunk_message(4, 9, 1, 0x0100_0000, &[1; 300], 128);
        for len in (0..300).chain((300..20_000).step_by(997)) {
            for prefix in [&[][..], &valid[..]] {
                let mut bytes = prefix.to_vec();
                bytes.extend(rng.bytes(len));
                for limits in [limits(), tight] {
                    let (whole, _) = scan_whole(limits, &bytes);
                    assert_eq!(scan_bytewise(limits, &bytes).0, whole, "length {len}");
                    assert_eq!(scan_random(limits, &bytes, len as u64 + 1).0, whole, "length {len}");
                }
            }
        }
    }

    #[test]
    fn garbage_made_of_header_like_bytes_never_panics() {
        // Bytes biased towards small csids, header types and the extended timestamp marker.
        let mut rng = XorShift(77);
        let alphabet = [0x00, 0x01, 0x02, 0x03, 0x04, 0x43, 0x83, 0xC3, 0xC4, 0x40, 0x80, 0xC0, 0xC1, 0xFF, 0x10];
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let (whole, _) = scan_whole(limits(), &bytes);
            assert_eq!(scan_random(limits(), &bytes, len as u64 + 3).0, whole, "length {len}");
        }
    }

    const CHUNK_SIZES: [usize; 4] = [1, 2, 128, 4096];
    const TIMESTAMPS: [u32; 5] = [0, 1000, 0x00FF_FFFE, 0x00FF_FFFF, 0x1234_5678];
    const CSIDS: [u32; 9] = [VIDEO_CSID, AUDIO_CSID, DATA_CSID, 2, 63, 64, 319, 320, 65599];

    fn payload_sizes(chunk_size: usize) -> [usize; 6] {
        [0, 1, chunk_size - 1, chunk_size, chunk_size + 1, 5 * chunk_size + 7]
    }

    /// What rml_rtmp's deserializer makes of `bytes` at `chunk_size`: the messages, and whether bytes are left.
    fn rml_read(bytes: &[u8], chunk_size: usize) -> Vec<MessagePayload> {
        let mut deserializer = ChunkDeserializer::new();
        deserializer.set_max_chunk_size(chunk_size).unwrap();
        let mut messages = Vec::new();
        let mut input = bytes;
        while let Some(message) = deserializer.get_next_message(input).unwrap() {
            messages.push(message);
            input = &[];
        }
        // A truncated stream would leave rml_rtmp waiting: feeding one more message must yield exactly it.
        let probe = chunk_message(7, 20, 0, 0, b"probe", chunk_size);
        let next = deserializer.get_next_message(&probe).unwrap();
        assert_eq!(next.map(|m| m.data), Some(Bytes::from_static(b"probe")), "rml_rtmp did not end on a boundary");
        messages
    }

    #[test]
    fn chunk_message_round_trips_through_rml_deserializer() {
        let mut rng = XorShift(5);
        for chunk_size in CHUNK_SIZES {
            for size in payload_sizes(chunk_size) {
                for timestamp in TIMESTAMPS {
                    for (i, csid) in CSIDS.into_iter().enumerate() {
                        let data = rng.bytes(size);
                        let message_stream_id = [0, 1, 0x0102_0304][i % 3];
                        let type_id = [9, 8, 18][i % 3];
                        let bytes = chunk_message(csid, type_id, message_stream_id, timestamp, &data, chunk_size);
                        let expected = payload(type_id, message_stream_id, timestamp, data);
                        assert_eq!(rml_read(&bytes, chunk_size), vec![expected], "csid {csid} size {size}");
                    }
                }
            }
        }
    }

    #[test]
    fn consecutive_chunk_messages_on_one_chunk_stream_round_trip() {
        for chunk_size in CHUNK_SIZES {
            let sizes = payload_sizes(chunk_size);
            for (i, first_ts) in TIMESTAMPS.into_iter().enumerate() {
                let second_ts = TIMESTAMPS[(i + 2) % TIMESTAMPS.len()];
                let first = vec![0xA5; sizes[(i + 1) % sizes.len()]];
                let second = vec![0x5A; sizes[(i + 5) % sizes.len()]];
                let mut bytes = chunk_message(VIDEO_CSID, 9, 1, first_ts, &first, chunk_size).to_vec();
                bytes.extend_from_slice(&chunk_message(VIDEO_CSID, 9, 1, second_ts, &second, chunk_size));
                let expected = vec![payload(9, 1, first_ts, first), payload(9, 1, second_ts, second)];
                assert_eq!(rml_read(&bytes, chunk_size), expected, "chunk size {chunk_size}, timestamps {i}");
            }
        }
    }

    #[test]
    fn chunk_message_output_passes_the_guard() {
        for chunk_size in CHUNK_SIZES {
            let mut bytes = set_chunk_size(chunk_size as u32, 128).to_vec();
            for size in payload_sizes(chunk_size) {
                for timestamp in TIMESTAMPS {
                    for csid in CSIDS {
                        bytes.extend_from_slice(&chunk_message(csid, 9, 1, timestamp, &vec![3; size], chunk_size));
                    }
                }
            }
            let limits = GuardLimits { max_chunk_streams: CSIDS.len() + 1, ..limits() };
            for (result, guard) in [scan_whole(limits, &bytes), scan_random(limits, &bytes, 11)] {
                assert_eq!(result, Ok(()), "chunk size {chunk_size}");
                assert!(at_boundary(&guard) && guard.chunk_size == chunk_size as u32);
            }
        }
    }

    #[test]
    fn chunk_message_layout() {
        let data: Vec<u8> = (0..=255).cycle().take(300).collect();
        let bytes = chunk_message(VIDEO_CSID, 9, 1, 0x1234_5678, &data, 128);
        let mut expected = vec![0x14, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
        expected.extend_from_slice(&data[..128]);
        expected.extend_from_slice(&[0xD4, 0x12, 0x34, 0x56, 0x78]);
        expected.extend_from_slice(&data[128..256]);
        expected.extend_from_slice(&[0xD4, 0x12, 0x34, 0x56, 0x78]);
        expected.extend_from_slice(&data[256..]);
        assert_eq!(bytes, expected);

        let bytes = chunk_message(AUDIO_CSID, 8, 0x0102_0304, 1000, &[7, 8], 128);
        assert_eq!(bytes, [0x15, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x02, 0x08, 4, 3, 2, 1, 7, 8][..]);

        // 2- and 3-byte basic headers, on the first and the continuation chunks.
        let bytes = chunk_message(319, 8, 0, 0, &[1, 2], 1);
        assert_eq!(bytes, [0x00, 255, 0, 0, 0, 0, 0, 2, 8, 0, 0, 0, 0, 1, 0xC0, 255, 2][..]);
        let bytes = chunk_message(65599, 8, 0, 0, &[1, 2], 1);
        assert_eq!(bytes, [0x01, 255, 255, 0, 0, 0, 0, 0, 2, 8, 0, 0, 0, 0, 1, 0xC1, 255, 255, 2][..]);
    }
}
