//! Stream metadata (`onMetaData`) as an AMF0 data message body, so that players get it through
//! the same shared, pre-chunked path as audio and video.

use bytes::Bytes;
use rml_amf0::Amf0Value;
use rml_rtmp::sessions::StreamMetadata;
use std::collections::HashMap;

/// The `onMetaData` body for `metadata`, or `None` when it cannot be encoded.
pub fn on_metadata(metadata: &StreamMetadata) -> Option<Bytes> {
    let numbers = [
        ("width", metadata.video_width.map(f64::from)),
        ("height", metadata.video_height.map(f64::from)),
        ("videocodecid", metadata.video_codec_id.map(f64::from)),
        ("videodatarate", metadata.video_bitrate_kbps.map(f64::from)),
        ("framerate", metadata.video_frame_rate.map(f64::from)),
        ("audiocodecid", metadata.audio_codec_id.map(f64::from)),
        ("audiodatarate", metadata.audio_bitrate_kbps.map(f64::from)),
        ("audiosamplerate", metadata.audio_sample_rate.map(f64::from)),
        ("audiochannels", metadata.audio_channels.map(f64::from)),
    ];
    let mut properties: HashMap<String, Amf0Value> =
        numbers.into_iter().filter_map(|(name, value)| Some((name.to_string(), Amf0Value::Number(value?)))).collect();
    if let Some(stereo) = metadata.audio_is_stereo {
        properties.insert("stereo".into(), Amf0Value::Boolean(stereo));
    }
    if let Some(encoder) = &metadata.encoder {
        properties.insert("encoder".into(), Amf0Value::Utf8String(encoder.clone()));
    }
    let values = vec![Amf0Value::Utf8String("onMetaData".into()), Amf0Value::Object(properties)];
    rml_amf0::serialize(&values).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_is_known() {
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(1280);
        metadata.encoder = Some("obs".into());
        let body = on_metadata(&metadata).unwrap();
        let values = rml_amf0::deserialize(&mut std::io::Cursor::new(body.to_vec())).unwrap();
        assert_eq!(values[0], Amf0Value::Utf8String("onMetaData".into()));
        let Amf0Value::Object(props) = &values[1] else { panic!("{values:?}") };
        assert_eq!(props.get("width"), Some(&Amf0Value::Number(1280.0)));
        assert_eq!(props.get("encoder"), Some(&Amf0Value::Utf8String("obs".into())));
        assert!(!props.contains_key("height"));
    }
}
