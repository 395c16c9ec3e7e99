//! JSON answers: AMS's `{success, message, dataId}` result, errors with a message that says what
//! is wrong, and the query and body readers the handlers share.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde_json::{Value, json};

/// An answer.
pub type Reply = Response<Full<Bytes>>;

/// `value` as JSON with `status`.
pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_body(status, "application/json", body)
}

/// A body of `content_type`.
pub fn with_body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    reply
}

/// AMS's success result, with the id of what was made or changed.
pub fn success(data_id: Option<&str>) -> Reply {
    json(StatusCode::OK, &json!({ "success": true, "message": Value::Null, "dataId": data_id }))
}

/// AMS's failure result with `status` and a message for people.
pub fn failure(status: StatusCode, message: impl std::fmt::Display) -> Reply {
    json(status, &json!({ "success": false, "message": message.to_string() }))
}

/// 404 for a path nothing answers.
pub fn not_found() -> Reply {
    failure(StatusCode::NOT_FOUND, "no such resource")
}

/// The value of `name` in a URL query, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    crate::security::credentials::query_pairs(query).find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A page size from the path, capped as AMS caps it (50).
pub fn page(offset: &str, size: &str) -> Result<(usize, usize), Reply> {
    match (offset.parse::<usize>(), size.parse::<usize>()) {
        (Ok(offset), Ok(size)) => Ok((offset, size.min(50))),
        _ => Err(failure(StatusCode::BAD_REQUEST, "offset and size must be whole numbers")),
    }
}

/// A JSON body of type `T`, or a 400 that says why it is not one.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| failure(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}
