//! Outbound network: the bounded HTTP client that asks webhooks and fetches JWKS (and, later,
//! reports status), with its trust roots. The server side of HTTP is [`crate::http`].

pub mod client;
