//! Webhook authorization, as a port: the pipeline hands over the URL and the JSON payload
//! `{"streamId", "action", "clientIp", "appName", "protocol"}`; HTTP 200 allows, anything else
//! refuses. A webhook that cannot be reached, is too slow or answers too much refuses too
//! (fail closed). The rim asks it over HTTP ([`Webhook`] is implemented in `net/`).

use crate::config::values::HttpUrl;
use std::future::Future;
use std::pin::Pin;

/// What the webhook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAnswer {
    /// It answered with this HTTP status.
    Status(u16),
    /// It could not be asked: why.
    Failed(String),
}

/// The future of one webhook call.
pub type Asking<'a> = Pin<Box<dyn Future<Output = WebhookAnswer> + Send + 'a>>;

/// Asks authorization webhooks: the port the admission asks through.
pub trait Webhook: Send + Sync {
    /// POSTs `payload` (JSON) to `url` within the implementation's bounds, and says what came back.
    fn ask<'a>(&'a self, url: &'a HttpUrl, payload: Vec<u8>) -> Asking<'a>;
}
