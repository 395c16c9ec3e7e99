//! The JWKS key-source port over the outbound HTTP client: a GET within [`FETCH_LIMITS`] whose
//! answer counts only with HTTP 200.

use super::client::{HttpClient, Limits};
use crate::config::values::HttpUrl;
use crate::security::jwks::{Fetching, KeySource};
use std::time::Duration;

/// Bounds of one JWKS fetch.
pub const FETCH_LIMITS: Limits =
    Limits { connect_timeout: Duration::from_secs(2), total_timeout: Duration::from_secs(5), max_body: 256 * 1024 };

/// Fetches JWKS documents over HTTP(S).
pub struct HttpKeySource {
    client: HttpClient,
}

impl HttpKeySource {
    /// JWKS documents fetched through `client`.
    pub fn new(client: HttpClient) -> Self {
        HttpKeySource { client }
    }
}

impl KeySource for HttpKeySource {
    fn fetch<'a>(&'a self, url: &'a HttpUrl) -> Fetching<'a> {
        Box::pin(async move {
            match self.client.request(http::Method::GET, &url.0, None, FETCH_LIMITS).await {
                Ok(response) if response.status == 200 => Ok(response.body.to_vec()),
                Ok(response) => Err(format!("HTTP {}", response.status)),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
