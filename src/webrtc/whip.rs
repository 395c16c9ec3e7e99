//! WHIP ingest: a publisher's offer gets a peer connection whose H.264 video and Opus audio
//! enter the hub as FLV tags, like an RTMP publish: video as AVC (a configuration record
//! whenever the SPS or PPS change, then length-prefixed frames), audio as Enhanced RTMP Opus.
//! RTMP readers and WHEP viewers read it from there. Timestamps are the arrival times, in
//! milliseconds since the session started, so audio and video share one clock.

use super::avc::{config_record, nal_units};
use super::{Answered, CONNECT_TIMEOUT, GrantWatch, WebRtc, WebRtcError, h264_codec, opus_codec};
use crate::media::{Frame, Hub, MediaKind, Publisher, PublisherInfo};
use ::webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use bytes::{BufMut, Bytes, BytesMut};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Largest access unit accepted; a peer that fragments more without ending a frame is reset.
pub const MAX_ACCESS_UNIT: usize = 4 * 1024 * 1024;
/// The OpusHead of a 48 kHz stereo stream (RFC 7845 5.1), the Enhanced RTMP sequence start.
const OPUS_HEAD: [u8; 19] = *b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";

impl WebRtc {
    /// Answers a publisher's `offer` for `app/stream`, and feeds the hub until the session ends.
    pub async fn publish(
        self: &Arc<Self>,
        hub: &Arc<Hub>,
        app: &str,
        stream: &str,
        peer: IpAddr,
        offer: String,
        grant: GrantWatch,
    ) -> Result<Answered, WebRtcError> {
        let publisher =
            hub.publish(app, stream, PublisherInfo { peer, protocol: "whip" }).map_err(|_| WebRtcError::InUse)?;
        let codecs = [(h264_codec(), RtpCodecKind::Video), (opus_codec(), RtpCodecKind::Audio)];
        let negotiated = self.answer(&codecs, &[], offer).await?;
        let tracks = negotiated.events.take_tracks().ok_or_else(|| super::offer_error("tracks taken"))?;
        let media = ingest(Arc::new(publisher), tracks, negotiated.connected);
        let id = self
            .keep(negotiated.pc, negotiated.events, grant, media)
            .ok_or_else(|| super::offer_error("no randomness for the session id"))?;
        Ok(Answered { sdp: negotiated.sdp, id, left_out: None })
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
    depacketizer: H264Packet,
    access_unit: BytesMut,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    announced: Option<(Bytes, Bytes)>,
}

impl VideoTags {
    /// Adds one RTP payload; at the end of an access unit (`marker`), returns its tags: a new
    /// configuration record if the parameter sets changed, then the frame.
    fn push(&mut self, payload: &Bytes, marker: bool) -> Vec<Bytes> {
        self.depacketizer.is_avc = true;
        match self.depacketizer.depacketize(payload) {
            Ok(nals) => self.access_unit.extend_from_slice(&nals),
            Err(_) => self.depacketizer = H264Packet::default(),
        }
        if self.access_unit.len() > MAX_ACCESS_UNIT {
            (self.depacketizer, self.access_unit) = (H264Packet::default(), BytesMut::new());
        }
        if !marker {
            return Vec::new();
        }
        let access_unit = std::mem::take(&mut self.access_unit).freeze();
        self.tags(&access_unit)
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
}
