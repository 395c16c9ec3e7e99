//! FLV tag bodies as RTMP carries them: enough parsing to know what a frame is (keyframe,
//! sequence header) and which codec it uses, legacy and Enhanced RTMP alike. Payloads are never
//! changed: they pass through to players as they came.

/// A codec, by the FLV codec id or the Enhanced RTMP FourCC that named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264 / AVC.
    Avc,
    /// H.265 / HEVC.
    Hevc,
    /// AV1.
    Av1,
    /// VP9.
    Vp9,
    /// AAC.
    Aac,
    /// Opus.
    Opus,
    /// MP3.
    Mp3,
    /// Any other audio or video codec.
    Other,
}

impl Codec {
    /// The codec's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Avc => "H.264",
            Codec::Hevc => "H.265",
            Codec::Av1 => "AV1",
            Codec::Vp9 => "VP9",
            Codec::Aac => "AAC",
            Codec::Opus => "Opus",
            Codec::Mp3 => "MP3",
            Codec::Other => "other",
        }
    }
}

/// What a video or audio tag body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    /// The codec.
    pub codec: Codec,
    /// A video frame a decoder can start from.
    pub keyframe: bool,
    /// Decoder configuration (AVCDecoderConfigurationRecord, AudioSpecificConfig, ...).
    pub sequence_header: bool,
}

/// Reads a video tag body; `None` for an empty one.
pub fn video(body: &[u8]) -> Option<TagInfo> {
    let first = *body.first()?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [isExHeader | frameType:3 | packetType:4] [FourCC]
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let codec = match body.get(1..5) {
            Some(b"avc1") => Codec::Avc,
            Some(b"hvc1") => Codec::Hevc,
            Some(b"av01") => Codec::Av1,
            Some(b"vp09") => Codec::Vp9,
            _ => Codec::Other,
        };
        return Some(TagInfo { codec, keyframe: frame_type == 1, sequence_header: packet_type == 0 });
    }
    let frame_type = first >> 4;
    let codec = match first & 0x0f {
        7 => Codec::Avc,
        12 => Codec::Hevc,
        _ => Codec::Other,
    };
    let sequence_header = matches!(codec, Codec::Avc | Codec::Hevc) && body.get(1) == Some(&0);
    Some(TagInfo { codec, keyframe: frame_type == 1, sequence_header })
}

/// Reads an audio tag body; `None` for an empty one.
pub fn audio(body: &[u8]) -> Option<TagInfo> {
    let first = *body.first()?;
    let (codec, sequence_header) = match first >> 4 {
        10 => (Codec::Aac, body.get(1) == Some(&0)),
        2 | 14 => (Codec::Mp3, false),
        9 => {
            // Enhanced RTMP audio: [soundFormat 9 | packetType:4] [FourCC]
            let codec = match body.get(1..5) {
                Some(b"Opus") => Codec::Opus,
                Some(b"mp4a") => Codec::Aac,
                _ => Codec::Other,
            };
            (codec, first & 0x0f == 0)
        }
        _ => (Codec::Other, false),
    };
    Some(TagInfo { codec, keyframe: false, sequence_header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_and_aac() {
        assert_eq!(
            video(&[0x17, 0, 0, 0, 0]),
            Some(TagInfo { codec: Codec::Avc, keyframe: true, sequence_header: true })
        );
        assert_eq!(
            video(&[0x17, 1, 0, 0, 0]),
            Some(TagInfo { codec: Codec::Avc, keyframe: true, sequence_header: false })
        );
        assert_eq!(video(&[0x27, 1]), Some(TagInfo { codec: Codec::Avc, keyframe: false, sequence_header: false }));
        assert_eq!(
            audio(&[0xaf, 0, 0x12, 0x10]),
            Some(TagInfo { codec: Codec::Aac, keyframe: false, sequence_header: true })
        );
        assert_eq!(audio(&[0xaf, 1, 0x21]).map(|t| t.sequence_header), Some(false));
        assert_eq!(video(&[]), None);
        assert_eq!(audio(&[]), None);
    }

    #[test]
    fn enhanced_rtmp_fourccs() {
        let hevc_start = [0x90, b'h', b'v', b'c', b'1', 1];
        assert_eq!(video(&hevc_start), Some(TagInfo { codec: Codec::Hevc, keyframe: true, sequence_header: true }));
        let av1_inter = [0xa1, b'a', b'v', b'0', b'1'];
        assert_eq!(video(&av1_inter), Some(TagInfo { codec: Codec::Av1, keyframe: false, sequence_header: false }));
        let opus_start = [0x90, b'O', b'p', b'u', b's'];
        assert_eq!(audio(&opus_start), Some(TagInfo { codec: Codec::Opus, keyframe: false, sequence_header: true }));
        assert_eq!(video(&[0x91]).map(|t| t.codec), Some(Codec::Other), "truncated FourCC");
    }
}
