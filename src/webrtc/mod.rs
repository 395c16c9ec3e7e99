//! WebRTC: WHEP playback of live streams to browsers (WHIP ingest is still to come), with the
//! `webrtc` crate on the daemon's runtime.

pub mod avc;
pub mod whep;
