//! rampart: the firmware daemon of an ARM streaming appliance.
//!
//! See `ARCHITECTURE.md` in the design folder for the map; `main.rs` only parses arguments
//! and hands over to [`app`].

pub mod admission;
pub mod app;
pub mod change_checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod logger;
pub mod media;
pub mod net;
pub mod net_limits;
pub mod rtmp;
pub mod secrets;
pub mod security;
pub mod storage;
pub mod store;
#[cfg(test)]
mod test_rng;
pub mod tls;
pub mod webrtc;
