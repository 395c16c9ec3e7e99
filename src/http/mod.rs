//! HTTP: the REST API (Ant Media Server's paths and shapes), the web panel, and the WHIP and
//! WHEP routes. Every request passes a gate first ([`gate`]): the dashboard
//! CIDR and a login or server JWT for the panel and server API, remoteAllowedCIDR and the app
//! JWT for an application's API.

// Handlers return `Result<Reply, Reply>`: the error is the refusal to send, built once per
// request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod app_api;
mod gate;
mod headers;
mod login;
mod panel;
mod reply;
pub mod server;
mod server_api;
pub mod state;
mod webrtc_api;
