//! H.264 from FLV to what a WebRTC packetizer takes: FLV carries the parameter sets in an
//! AVCDecoderConfigurationRecord and each frame as length-prefixed NAL units (AVCC); RTP
//! packetizers take Annex B (start-code-delimited) access units, parameter sets first on a
//! keyframe so that a viewer can start decoding there.

use bytes::Bytes;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What the AVCDecoderConfigurationRecord says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// Bytes of each NAL unit's length prefix (1, 2 or 4).
    pub length_size: usize,
    /// The SPS and PPS NAL units, in that order.
    pub parameter_sets: Vec<Bytes>,
}

/// Where an FLV video tag body's H.264 data starts, and whether it is the configuration
/// record; `None` when the body is not H.264 (legacy codec id 7 or Enhanced RTMP `avc1`).
pub fn avc_payload(body: &[u8]) -> Option<(bool, &[u8])> {
    let first = *body.first()?;
    if first & 0x80 == 0 {
        // [frameType:4 | codecId:4] [AVCPacketType] [compositionTime:3] data
        if first & 0x0f != 7 {
            return None;
        }
        return Some((*body.get(1)? == 0, body.get(5..)?));
    }
    // Enhanced RTMP: [isExHeader | frameType:3 | packetType:4] [FourCC] ...
    if body.get(1..5)? != b"avc1" {
        return None;
    }
    match first & 0x0f {
        0 => Some((true, body.get(5..)?)),
        1 => Some((false, body.get(8..)?)),
        3 => Some((false, body.get(5..)?)),
        _ => None,
    }
}

/// Reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.2.4.1).
pub fn parse_config(record: &[u8]) -> Option<AvcConfig> {
    let length_size = usize::from(record.get(4)? & 0x03) + 1;
    let mut at = 5;
    let mut parameter_sets = Vec::new();
    for mask in [0x1f, 0xff] {
        let count = record.get(at)? & mask;
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
            parameter_sets.push(Bytes::copy_from_slice(record.get(at + 2..at + 2 + len)?));
            at += 2 + len;
        }
    }
    Some(AvcConfig { length_size, parameter_sets })
}

/// The NAL units of length-prefixed data; `None` when a length runs past the data.
pub fn nal_units(avcc: &[u8], length_size: usize) -> Option<Vec<&[u8]>> {
    let mut units = Vec::new();
    let mut rest = avcc;
    while !rest.is_empty() {
        let (len_bytes, tail) = rest.split_at_checked(length_size)?;
        let len = len_bytes.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        let (nal, tail) = tail.split_at_checked(len)?;
        units.push(nal);
        rest = tail;
    }
    Some(units)
}

/// The Annex B access unit of length-prefixed NAL units; `prefix` NAL units go first.
/// `None` when a length runs past the data.
pub fn annex_b(avcc: &[u8], length_size: usize, prefix: &[Bytes]) -> Option<Vec<u8>> {
    let units = nal_units(avcc, length_size)?;
    let mut out = Vec::with_capacity(avcc.len() + prefix.iter().map(|p| p.len() + 4).sum::<usize>() + 16);
    for nal in prefix.iter().map(|p| &p[..]).chain(units) {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    Some(out)
}

/// An AVCDecoderConfigurationRecord with 4-byte lengths for one SPS and one PPS.
pub fn config_record(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let (profile, compatibility, level) = (*sps.get(1)?, *sps.get(2)?, *sps.get(3)?);
    let mut record = vec![1, profile, compatibility, level, 0xff, 0xe1];
    record.extend_from_slice(&u16::try_from(sps.len()).ok()?.to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&u16::try_from(pps.len()).ok()?.to_be_bytes());
    record.extend_from_slice(pps);
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with one SPS (67 42 ..) and one PPS (68 ce ..), 4-byte lengths.
    const RECORD: [u8; 19] = [1, 0x42, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1f, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn the_configuration_record_gives_its_parameter_sets() {
        let config = parse_config(&RECORD).unwrap();
        assert_eq!(config.length_size, 4);
        assert_eq!(config.parameter_sets, [&[0x67, 0x42, 0, 0x1f][..], &[0x68, 0xce, 0x3c, 0x80][..]]);
        assert_eq!(parse_config(&RECORD[..12]), None, "a cut record is refused");
    }

    #[test]
    fn length_prefixed_units_become_annex_b_with_the_prefix_first() {
        let avcc = [0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06];
        let sps = Bytes::from_static(&[0x67, 1]);
        assert_eq!(annex_b(&avcc, 4, &[sps]).unwrap(), [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        assert_eq!(annex_b(&avcc[..7], 4, &[]), None, "a length past the end is refused");
    }

    #[test]
    fn a_record_made_from_parameter_sets_reads_back() {
        let (sps, pps) = ([0x67, 0x42, 0xc0, 0x1f, 0xda], [0x68, 0xce, 0x3c, 0x80]);
        let config = parse_config(&config_record(&sps, &pps).unwrap()).unwrap();
        assert_eq!(
            config,
            AvcConfig {
                length_size: 4,
                parameter_sets: vec![Bytes::copy_from_slice(&sps), Bytes::copy_from_slice(&pps)]
            }
        );
        assert_eq!(config_record(&[0x67], &pps), None, "an SPS too short to name its profile");
    }

    #[test]
    fn legacy_and_enhanced_tags_are_read() {
        assert_eq!(avc_payload(&[0x17, 0, 0, 0, 0, 9]), Some((true, &[9][..])));
        assert_eq!(avc_payload(&[0x27, 1, 0, 0, 0, 8]), Some((false, &[8][..])));
        assert_eq!(avc_payload(&[0x1c, 1, 0, 0, 0]), None, "HEVC is not H.264");
        assert_eq!(avc_payload(&[0x91, b'a', b'v', b'c', b'1', 0, 0, 0, 7]), Some((false, &[7][..])));
        assert_eq!(avc_payload(&[0x90, b'a', b'v', b'c', b'1', 5]), Some((true, &[5][..])));
    }
}
