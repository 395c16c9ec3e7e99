//! RTMP and RTMPS: the listener, and one connection driven through rml_rtmp's sans-I/O server
//! session, with every publish and play decided by the security pipeline and carried by the
//! media hub.

pub mod chunks;
pub mod conn;
mod metadata;
pub mod server;

pub use conn::{Context, Limits};
