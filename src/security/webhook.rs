//! Webhook authorization: POST `{"streamId", "action", "clientIp", "appName", "protocol"}` as
//! JSON; HTTP 200 allows, anything else refuses. A webhook that cannot be reached, is too slow
//! or answers too much refuses too (fail closed).

use crate::config::values::HttpUrl;
use crate::net::client::{HttpClient, Limits};
use std::time::Duration;

/// Bounds of one webhook call: 2 s to connect, 5 s in all, 64 KiB of answer.
pub const LIMITS: Limits =
    Limits { connect_timeout: Duration::from_secs(2), total_timeout: Duration::from_secs(5), max_body: 64 * 1024 };

/// What the webhook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAnswer {
    /// It answered with this HTTP status.
    Status(u16),
    /// It could not be asked: why.
    Failed(String),
}

/// Asks the webhook at `url` with `payload`, within `LIMITS`.
pub async fn ask(client: &HttpClient, url: &HttpUrl, payload: Vec<u8>) -> WebhookAnswer {
    ask_within(client, url, payload, LIMITS).await
}

/// Asks the webhook within other limits (tests use short ones).
pub async fn ask_within(client: &HttpClient, url: &HttpUrl, payload: Vec<u8>, limits: Limits) -> WebhookAnswer {
    let body = Some(("application/json", bytes::Bytes::from(payload)));
    match client.request(http::Method::POST, &url.0, body, limits).await {
        Ok(response) => WebhookAnswer::Status(response.status),
        Err(e) => WebhookAnswer::Failed(e.to_string()),
    }
}
