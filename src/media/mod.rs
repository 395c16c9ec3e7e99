//! Media: the hub that hands each live stream from its publisher to its readers, and the
//! frames it carries. Payloads are `Bytes`, shared by every reader and never copied per reader.

pub mod flv;
pub mod hub;

pub use hub::{Hub, HubLimits, LiveStatus, Publisher, PublisherInfo, Reader, StreamInUse};

use bytes::Bytes;
use std::sync::OnceLock;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An FLV audio tag body.
    Audio,
    /// An FLV video tag body.
    Video,
    /// An AMF0 data message (`onMetaData`).
    Data,
}

/// One message of a live stream, as the publisher sent it.
#[derive(Debug)]
pub struct Frame {
    /// Audio, video or data.
    pub kind: MediaKind,
    /// Milliseconds, as the publisher stamped it.
    pub timestamp: u32,
    /// The message body, unchanged.
    pub payload: Bytes,
    /// What the payload is, for audio and video.
    pub info: Option<flv::TagInfo>,
    /// The frame serialised for RTMP players, made once by the first player that needs it.
    pub rtmp_wire: OnceLock<Bytes>,
}

impl Frame {
    /// A frame of `kind` with its payload classified.
    pub fn new(kind: MediaKind, timestamp: u32, payload: Bytes) -> Self {
        let info = match kind {
            MediaKind::Audio => flv::audio(&payload),
            MediaKind::Video => flv::video(&payload),
            MediaKind::Data => None,
        };
        Frame { kind, timestamp, payload, info, rtmp_wire: OnceLock::new() }
    }

    /// Whether this is decoder configuration (or stream metadata), which every reader needs.
    pub fn is_header(&self) -> bool {
        self.kind == MediaKind::Data || self.info.is_some_and(|i| i.sequence_header)
    }

    /// Whether this is Enhanced RTMP audio (sound format 9: a FourCC codec such as Opus).
    pub fn is_enhanced_audio(&self) -> bool {
        self.kind == MediaKind::Audio && self.payload.first().is_some_and(|b| b >> 4 == 9)
    }

    /// Whether this is a video frame a decoder can start from.
    pub fn is_keyframe(&self) -> bool {
        self.kind == MediaKind::Video && self.info.is_some_and(|i| i.keyframe && !i.sequence_header)
    }
}
