//! WHEP playback: a viewer's offer gets a peer connection that sends the live stream read from
//! the hub like an RTMP player reads it (starting at the last keyframe, skipping to the next
//! one when it falls behind): H.264 video, and Opus audio when the source has it (from WHIP or
//! Enhanced RTMP). AAC cannot travel in WebRTC; it is left out and the answer says so.

use super::avc::{AvcConfig, annex_b, avc_payload, parse_config};
use super::{CONNECT_TIMEOUT, Prepared, Reservation, WebRtc, WebRtcError, h264_codec, opus_codec, random_ssrc};
use crate::media::flv::Codec;
use crate::media::{Frame, Hub, MediaKind, Reader};
use ::webrtc::media_stream::track_local::TrackLocal;
use ::webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use ::webrtc::rtp_transceiver::RtpSender;
use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The length of one Opus frame as browsers and encoders send it.
const OPUS_FRAME: Duration = Duration::from_millis(20);

impl WebRtc {
    /// Prepares the session of a viewer's `offer` for `app/stream`, in the place `reservation`
    /// holds: a reader of the live stream and the answer. Once started, it sends the stream
    /// until the session ends.
    pub async fn prepare_play(
        &self,
        hub: &Hub,
        app: &str,
        stream: &str,
        offer: String,
        reservation: Reservation,
    ) -> Result<Prepared, WebRtcError> {
        let reader = hub.subscribe(app, stream).ok_or(WebRtcError::NotLive)?;
        let audio = hub.live_streams().into_iter().find(|s| s.app == app && s.stream == stream).and_then(|s| s.audio);
        let opus = audio == Some(Codec::Opus.name());
        let video = Outgoing::new(stream, h264_codec(), RtpCodecKind::Video).map_err(super::offer_error)?;
        let mut codecs = vec![(h264_codec(), RtpCodecKind::Video)];
        let mut tracks: Vec<Arc<dyn TrackLocal>> = vec![video.track.clone()];
        let sound = match opus {
            true => {
                let sound = Outgoing::new(stream, opus_codec(), RtpCodecKind::Audio).map_err(super::offer_error)?;
                codecs.push((opus_codec(), RtpCodecKind::Audio));
                tracks.push(sound.track.clone());
                Some(sound)
            }
            false => None,
        };
        let negotiated = self.answer(&codecs, &tracks, offer).await?;
        let payload_types = match payload_types(&negotiated.senders).await {
            Ok(payload_types) => payload_types,
            Err(e) => {
                let _ = negotiated.pc.close().await;
                return Err(e);
            }
        };
        let feed = Feed {
            video: video.with_payload_type(payload_types.first().copied().flatten()),
            sound: sound.map(|s| s.with_payload_type(payload_types.get(1).copied().flatten())),
            config: None,
            last_video: None,
        };
        let left_out = (audio.is_some() && !opus).then_some("left out: AAC cannot be sent over WebRTC");
        Self::prepared(negotiated, |connected| feed.run(reader, connected), reservation, left_out).await
    }
}

/// The payload type the answer gave each of `senders`.
async fn payload_types(senders: &[Arc<dyn RtpSender>]) -> Result<Vec<Option<u8>>, WebRtcError> {
    let mut payload_types = Vec::new();
    for sender in senders {
        let parameters = sender.get_parameters().await.map_err(super::offer_error)?;
        payload_types.push(parameters.rtp_parameters.codecs.first().map(|c| c.payload_type));
    }
    Ok(payload_types)
}

/// A local track with its SSRC and the payload type the answer gave it.
struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
}

impl Outgoing {
    fn new(stream: &str, codec: RTCRtpCodecParameters, kind: RtpCodecKind) -> Result<Self, ::webrtc::error::Error> {
        let ssrc = random_ssrc();
        let encoding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: codec.rtp_codec,
            ..Default::default()
        };
        let name = if kind == RtpCodecKind::Video { "video" } else { "audio" };
        let description = MediaStreamTrack::new(
            format!("rampart-{stream}"),
            name.to_string(),
            stream.to_string(),
            kind,
            vec![encoding],
        );
        let track = Arc::new(TrackLocalStaticSample::new(Instant::now(), description)?);
        Ok(Outgoing { track, ssrc, payload_type: codec.payload_type })
    }

    fn with_payload_type(mut self, negotiated: Option<u8>) -> Self {
        self.payload_type = negotiated.unwrap_or(self.payload_type);
        self
    }

    async fn send(&self, data: Bytes, duration: Duration) -> Result<(), &'static str> {
        let sample = Sample { data, duration, ..Sample::new(Instant::now()) };
        let writer = self.track.sample_writer(self.ssrc, self.payload_type);
        writer.write_sample(&sample).await.map_err(|_| "the track could not be written")
    }
}

/// Sends a reader's frames to the tracks.
struct Feed {
    video: Outgoing,
    sound: Option<Outgoing>,
    config: Option<AvcConfig>,
    last_video: Option<u32>,
}

impl Feed {
    /// Waits for the viewer to connect, then sends until the stream ends; returns why it ended.
    async fn run(mut self, reader: Reader, mut connected: mpsc::Receiver<()>) -> &'static str {
        if tokio::time::timeout(CONNECT_TIMEOUT, connected.recv()).await.is_err() {
            return "viewer never connected";
        }
        while let Some(frame) = reader.recv().await {
            let sent = match frame.kind {
                MediaKind::Video => self.send_video(&frame).await,
                MediaKind::Audio => self.send_audio(&frame).await,
                MediaKind::Data => Ok(()),
            };
            if let Err(why) = sent {
                return why;
            }
        }
        "stream ended"
    }

    async fn send_video(&mut self, frame: &Frame) -> Result<(), &'static str> {
        let Some((is_config, data)) = avc_payload(&frame.payload) else { return Ok(()) };
        if is_config {
            self.config = parse_config(data);
            return Ok(());
        }
        let Some(config) = &self.config else { return Ok(()) };
        let prefix: &[Bytes] = if frame.is_keyframe() { &config.parameter_sets } else { &[] };
        let Some(access_unit) = annex_b(data, config.length_size, prefix) else { return Ok(()) };
        let step = self.last_video.map_or(0, |last| frame.timestamp.wrapping_sub(last).min(1000));
        self.last_video = Some(frame.timestamp);
        self.video.send(access_unit.into(), Duration::from_millis(u64::from(step))).await
    }

    async fn send_audio(&mut self, frame: &Frame) -> Result<(), &'static str> {
        // Enhanced RTMP Opus: [0x90 | packetType] "Opus" data; packet type 1 carries a frame.
        let Some(sound) = &self.sound else { return Ok(()) };
        match frame.payload.first() {
            Some(0x91) if frame.payload.get(1..5) == Some(b"Opus") => {
                sound.send(frame.payload.slice(5..), OPUS_FRAME).await
            }
            _ => Ok(()),
        }
    }
}
