//! HTTP: the outbound client (webhooks, JWKS); the REST API, panel and WHIP/WHEP server follow.

pub mod client;
