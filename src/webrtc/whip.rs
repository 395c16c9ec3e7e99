//! WHIP ingest: a publisher's offer gets a peer connection whose H.264 video and Opus audio
//! enter the hub as FLV tags, like an RTMP publish: video as AVC (a configuration record
//! whenever the SPS or PPS change, then length-prefixed frames), audio as Enhanced RTMP Opus.
//! RTMP readers and WHEP viewers read it from there. Timestamps are the arrival times, in
//! milliseconds since the session started, so audio and video share one clock.

use super::avc::{config_record, nal_units};
use super::{CONNECT_TIMEOUT, Prepared, Reservation, WebRtc, WebRtcError, h264_codec, opus_codec};
use crate::media::{Frame, Hub, MediaKind, Publisher, PublisherInfo};
use ::webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use bytes::{BufMut, Bytes, BytesMut};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Largest access unit accepted; a peer that fragments more without ending a frame is reset.
pub const MAX_ACCESS_UNIT: usize = 4 * 1024 * 1024;
/// The OpusHead of a 48 kHz stereo stream (RFC 7845 5.1), the Enhanced RTMP sequence start.
const OPUS_HEAD: [u8; 19] = *b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";

impl WebRtc {
    /// Prepares the session of a publisher's `offer` for `app/stream`, in the place
    /// `reservation` holds: the hub's publisher slot and the answer. Once started, it feeds the
    /// hub until the session ends.
    pub async fn prepare_publish(
        &self,
        hub: &Arc<Hub>,
        app: &str,
        stream: &str,
        offer: String,
        reservation: Reservation,
    ) -> Result<Prepared, WebRtcError> {
        let publisher = hub
            .publish(app, stream, PublisherInfo { peer: reservation.peer(), protocol: "whip" })
            .map_err(|_| WebRtcError::InUse)?;
        let codecs = [(h264_codec(), RtpCodecKind::Video), (opus_codec(), RtpCodecKind::Audio)];
        let negotiated = self.answer(&codecs, &[], offer).await?;
        let tracks = negotiated.events.take_tracks().ok_or_else(|| super::offer_error("tracks taken"))?;
        Self::prepared(negotiated, |connected| ingest(Arc::new(publisher), tracks, connected), reservation, None).await
    }
}

/// Reads every track the publisher sends into the hub, until the session ends.
async fn ingest(
    publisher: Arc<Publisher>,
    mut tracks: mpsc::Receiver<Arc<dyn TrackRemote>>,
    mut connected: mpsc::Receiver<()>,
) -> &'static str {
    if tokio::time::timeout(CONNECT_TIMEOUT, connected.recv()).await.is_err() {
        return "publisher never connected";
    }
    let started = Instant::now();
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            Some(track) = tracks.recv() => {
                let publisher = publisher.clone();
                readers.spawn(async move { read_track(track, &publisher, started).await });
            }
            Some(_) = readers.join_next() => {
                if readers.is_empty() {
                    return "publisher's tracks ended";
                }
            }
            else => return "publisher sent no track",
        }
    }
}

async fn read_track(track: Arc<dyn TrackRemote>, publisher: &Publisher, started: Instant) {
    let Some(ssrc) = track.ssrcs().await.first().copied() else { return };
    let opus = track.codec(ssrc).await.is_some_and(|c| c.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS));
    let video = track.kind().await == RtpCodecKind::Video;
    if video {
        // Ask for a keyframe at once: readers can start only from one.
        let _ = track.write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc })]).await;
    }
    let mut to_flv = VideoTags::default();
    if opus {
        publisher.send(Frame::new(MediaKind::Audio, 0, opus_tag(0, &OPUS_HEAD)));
    }
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let now = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        if opus {
            publisher.send(Frame::new(MediaKind::Audio, now, opus_tag(1, &packet.payload)));
        } else if video {
            for tag in to_flv.push(&packet.payload, packet.header.marker) {
                publisher.send(Frame::new(MediaKind::Video, now, tag));
            }
        }
    }
}

/// An Enhanced RTMP Opus audio tag of `packet_type` (0: sequence start, 1: a frame).
fn opus_tag(packet_type: u8, data: &[u8]) -> Bytes {
    let mut tag = BytesMut::with_capacity(5 + data.len());
    tag.put_u8(0x90 | packet_type);
    tag.put_slice(b"Opus");
    tag.put_slice(data);
    tag.freeze()
}

/// Turns H.264 RTP payloads into FLV AVC video tags.
#[derive(Default)]
struct VideoTags {
    /// The access unit so far, as 4-byte length-prefixed NAL units.
    access_unit: BytesMut,
    /// Where the NAL unit that FU-A fragments are building starts in `access_unit`.
    fragment_start: Option<usize>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    announced: Option<(Bytes, Bytes)>,
}

impl VideoTags {
    /// Adds one RTP payload; at the end of an access unit (`marker`), returns its tags: a new
    /// configuration record if the parameter sets changed, then the frame.
    fn push(&mut self, payload: &Bytes, marker: bool) -> Vec<Bytes> {
        if self.depacketize(payload).is_none() || self.access_unit.len() > MAX_ACCESS_UNIT {
            self.drop_access_unit();
        }
        if !marker {
            return Vec::new();
        }
        self.abandon_fragment();
        let access_unit = std::mem::take(&mut self.access_unit).freeze();
        self.tags(&access_unit)
    }

    /// Appends the NAL units of one RTP payload (RFC 6184: a single NAL unit, STAP-A or FU-A)
    /// to the access unit; `None` for a payload that is malformed or of another kind. Every
    /// length the peer sends is checked here: the `rtc` crate's depacketizer (0.21) indexes
    /// past the end of a short STAP-A, and keeps FU-A fragments where no size limit reaches.
    fn depacketize(&mut self, payload: &[u8]) -> Option<()> {
        let (&indicator, body) = payload.split_first()?;
        if indicator & 0x1f != 28 {
            // Fragments of a NAL unit come one after the other: this one is not coming back.
            self.abandon_fragment();
        }
        match indicator & 0x1f {
            1..=23 => self.put_nal(payload),
            24 => {
                let mut rest = body;
                while !rest.is_empty() {
                    let (size, tail) = rest.split_at_checked(2)?;
                    let (nal, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes([size[0], size[1]])))?;
                    if !nal.is_empty() {
                        self.put_nal(nal);
                    }
                    rest = tail;
                }
            }
            28 => {
                let (&header, data) = body.split_first()?;
                if header & 0x80 != 0 {
                    self.abandon_fragment();
                    self.fragment_start = Some(self.access_unit.len());
                    self.access_unit.put_u32(0);
                    self.access_unit.put_u8((indicator & 0xe0) | (header & 0x1f));
                }
                let start = self.fragment_start?;
                self.access_unit.put_slice(data);
                if header & 0x40 != 0 {
                    let length = (self.access_unit.len() - start - 4) as u32;
                    self.access_unit[start..start + 4].copy_from_slice(&length.to_be_bytes());
                    self.fragment_start = None;
                }
            }
            _ => return None,
        }
        Some(())
    }

    fn put_nal(&mut self, nal: &[u8]) {
        self.access_unit.put_u32(nal.len() as u32);
        self.access_unit.put_slice(nal);
    }

    /// Leaves out the NAL unit that fragments were building, if any.
    fn abandon_fragment(&mut self) {
        if let Some(start) = self.fragment_start.take() {
            self.access_unit.truncate(start);
        }
    }

    /// Forgets the access unit in progress (it cannot be decoded whole any more).
    fn drop_access_unit(&mut self) {
        self.access_unit.clear();
        self.fragment_start = None;
    }

    fn tags(&mut self, access_unit: &Bytes) -> Vec<Bytes> {
        let Some(units) = nal_units(access_unit, 4) else { return Vec::new() };
        let mut keyframe = false;
        let mut frame = BytesMut::with_capacity(access_unit.len() + 5);
        for nal in units {
            match nal.first().map(|b| b & 0x1f) {
                Some(7) => self.sps = Some(Bytes::copy_from_slice(nal)),
                Some(8) => self.pps = Some(Bytes::copy_from_slice(nal)),
                Some(9) | None => {}
                Some(kind) => {
                    keyframe |= kind == 5;
                    frame.put_u32(nal.len() as u32);
                    frame.put_slice(nal);
                }
            }
        }
        let mut tags = Vec::new();
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            let current = (sps.clone(), pps.clone());
            if self.announced.as_ref() != Some(&current) {
                if let Some(record) = config_record(sps, pps) {
                    tags.push(video_tag(true, 0, &record));
                    self.announced = Some(current);
                }
            }
        }
        if self.announced.is_some() && !frame.is_empty() {
            tags.push(video_tag(keyframe, 1, &frame));
        }
        tags
    }
}

/// An FLV AVC video tag body of `packet_type` (0: configuration record, 1: frame).
fn video_tag(keyframe: bool, packet_type: u8, data: &[u8]) -> Bytes {
    let mut tag = BytesMut::with_capacity(5 + data.len());
    tag.put_u8(if keyframe { 0x17 } else { 0x27 });
    tag.put_u8(packet_type);
    tag.put_slice(&[0, 0, 0]);
    tag.put_slice(data);
    tag.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webrtc::avc::parse_config;

    const SPS: [u8; 5] = [0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn parameter_sets_then_frames_become_a_record_then_tags() {
        let mut tags = VideoTags::default();
        assert!(tags.push(&Bytes::from_static(&[0x41, 0x9a, 1]), true).is_empty(), "nothing before the SPS and PPS");
        // A STAP-A with SPS and PPS, then an IDR slice that ends the access unit.
        let mut stap = vec![24, 0, 5];
        stap.extend_from_slice(&SPS);
        stap.extend_from_slice(&[0, 4]);
        stap.extend_from_slice(&PPS);
        assert!(tags.push(&Bytes::from(stap), false).is_empty());
        let out = tags.push(&Bytes::from_static(&[0x65, 0x88, 0x84]), true);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0][..5], &[0x17, 0, 0, 0, 0]);
        assert_eq!(parse_config(&out[0][5..]).unwrap().parameter_sets, [&SPS[..], &PPS[..]]);
        assert_eq!(&out[1][..], &[0x17, 1, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
        let next = tags.push(&Bytes::from_static(&[0x41, 0x9a, 2]), true);
        assert_eq!(
            &next[..],
            &[Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x9a, 2])],
            "same record: not sent again"
        );
    }

    #[test]
    fn a_frame_that_never_ends_is_dropped_not_kept() {
        let mut tags = VideoTags::default();
        let start = Bytes::from_static(&[28, 0x85, 0]);
        let middle =
            Bytes::from(vec![28u8, 0x05].into_iter().chain(std::iter::repeat_n(0, 60_000)).collect::<Vec<_>>());
        tags.push(&start, false);
        for _ in 0..100 {
            tags.push(&middle, false);
        }
        assert!(tags.access_unit.len() <= MAX_ACCESS_UNIT);
    }

    #[test]
    fn fragments_are_put_back_together_and_malformed_payloads_are_dropped() {
        let mut tags = VideoTags::default();
        let mut stap = vec![24, 0, 5];
        stap.extend_from_slice(&SPS);
        stap.extend_from_slice(&[0, 4]);
        stap.extend_from_slice(&PPS);
        assert!(tags.push(&Bytes::from(stap), false).is_empty());
        // An IDR slice (NRI 3, type 5) in three FU-A fragments.
        tags.push(&Bytes::from_static(&[0x7c, 0x85, 0x88]), false);
        tags.push(&Bytes::from_static(&[0x7c, 0x05, 0x84]), false);
        let out = tags.push(&Bytes::from_static(&[0x7c, 0x45, 0x21]), true);
        assert_eq!(&out[1][..], &[0x17, 1, 0, 0, 0, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]);

        for hostile in [&[24u8, 0, 1, 0x67, 0][..], &[24, 0, 9, 0x67], &[24, 0], &[28], &[28, 0x05, 1], &[25, 1], &[]] {
            tags.push(&Bytes::copy_from_slice(hostile), false);
            assert!(tags.push(&Bytes::from_static(&[0x41, 0x9a, 3]), true).len() == 1, "{hostile:?} is dropped alone");
        }
        // A fragment that never ends is left out of its access unit.
        tags.push(&Bytes::from_static(&[0x7c, 0x85, 0x88]), false);
        let out = tags.push(&Bytes::from_static(&[0x41, 0x9a, 4]), true);
        assert_eq!(&out[0][..], &[0x27, 1, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x9a, 4]);
    }
}
