//! Outbound network: the bounded HTTP client that asks webhooks and fetches JWKS (and, later,
//! reports status), with its trust roots, and the security ports it implements over it. The
//! server side of HTTP is [`crate::http`].

pub mod client;
pub mod jwks;
pub mod webhook;
