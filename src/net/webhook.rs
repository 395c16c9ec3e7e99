//! The security pipeline's webhook port over the outbound HTTP client: a JSON POST within
//! [`LIMITS`].

use super::client::{HttpClient, Limits};
use crate::config::values::HttpUrl;
use crate::security::webhook::{Asking, Webhook, WebhookAnswer};
use std::time::Duration;

/// Bounds of one webhook call: 2 s to connect, 5 s in all, 64 KiB of answer.
pub const LIMITS: Limits =
    Limits { connect_timeout: Duration::from_secs(2), total_timeout: Duration::from_secs(5), max_body: 64 * 1024 };

/// Asks webhooks over HTTP(S).
pub struct HttpWebhook {
    client: HttpClient,
    limits: Limits,
}

impl HttpWebhook {
    /// Webhooks asked through `client` within [`LIMITS`].
    pub fn new(client: HttpClient) -> Self {
        Self::within(client, LIMITS)
    }

    /// Webhooks asked within other limits (tests use short ones).
    pub fn within(client: HttpClient, limits: Limits) -> Self {
        HttpWebhook { client, limits }
    }
}

impl Webhook for HttpWebhook {
    fn ask<'a>(&'a self, url: &'a HttpUrl, payload: Vec<u8>) -> Asking<'a> {
        Box::pin(async move {
            let body = Some(("application/json", bytes::Bytes::from(payload)));
            match self.client.request(http::Method::POST, &url.0, body, self.limits).await {
                Ok(response) => WebhookAnswer::Status(response.status),
                Err(e) => WebhookAnswer::Failed(e.to_string()),
            }
        })
    }
}
