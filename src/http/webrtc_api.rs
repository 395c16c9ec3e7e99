//! WHEP at `/<App>/whep/<streamId>` and WHIP at `/<App>/whip/<streamId>`: POST an SDP offer
//! (credentials in the query or `Authorization: Bearer`), get 201 with the SDP answer and the
//! session's Location; DELETE the Location to end it; OPTIONS answers CORS preflight, so a page
//! on another origin can use them. Every offer is a play (WHEP) or a publish (WHIP) admitted
//! like any other: decided, its session prepared, then its credentials consumed.

use super::reply::{Reply, failure, with_body};
use super::server::{Call, Http};
use crate::admission::Refused;
use crate::security::{AccessRequest, Action, Credentials, Protocol};
use crate::webrtc::{GrantWatch, WebRtcError};
use http::{HeaderValue, StatusCode, header};

/// Longest SDP offer accepted.
pub const MAX_OFFER_BYTES: usize = 32 * 1024;

/// Answers a WHEP (`action` play) or WHIP (publish) call for `app/stream` (`session`: the id
/// in a session's Location).
pub async fn handle(call: &Call, action: Action, app: &str, stream: &str, session: Option<&str>, http: &Http) -> Reply {
    let mut reply = match (call.method.as_str(), session) {
        ("OPTIONS", _) => with_body(StatusCode::NO_CONTENT, "text/plain", ""),
        ("POST", None) => offer(call, action, app, stream, http).await,
        ("DELETE", Some(id)) if http.state.webrtc.stop(id) => with_body(StatusCode::OK, "text/plain", ""),
        ("DELETE", Some(_)) => failure(StatusCode::NOT_FOUND, "no such WebRTC session"),
        _ => failure(StatusCode::METHOD_NOT_ALLOWED, "POST an SDP offer, or DELETE a session's Location"),
    };
    let headers = reply.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "POST, DELETE, OPTIONS"),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type"),
        (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Location, X-Rampart-Audio"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    reply
}

async fn offer(call: &Call, action: Action, app: &str, stream: &str, http: &Http) -> Reply {
    let content_type = call.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/sdp") {
        return failure(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the offer must be sent as application/sdp");
    }
    let Some(sdp) = std::str::from_utf8(&call.body).ok().filter(|s| !s.is_empty() && s.len() <= MAX_OFFER_BYTES) else {
        return failure(StatusCode::BAD_REQUEST, "the offer must be SDP text of at most 32 KiB");
    };
    let services = &http.state;
    let mut credentials = Credentials::from_query(call.query.as_deref().unwrap_or_default());
    if let Some(auth) = call.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        credentials = credentials.with_authorization(auth);
    }
    let protocol = if action == Action::Play { Protocol::Whep } else { Protocol::Whip };
    // The place first: an offer the box has no room for is refused before any credential is used.
    let reservation = match services.webrtc.reserve(app, call.ip) {
        Ok(reservation) => reservation,
        Err(e) => return refusal(e),
    };
    let request = AccessRequest {
        action,
        protocol,
        app: app.to_string(),
        stream_id: stream.to_string(),
        room_id: None,
        peer_ip: call.ip,
        credentials,
        now: http.now(),
    };
    let (webrtc, hub, offer) = (&services.webrtc, &services.hub, sdp.to_string());
    // Made only once the offer is allowed, and started only once its credentials are consumed.
    let session = async move {
        match action {
            Action::Play => webrtc.prepare_play(hub, app, stream, offer, reservation).await,
            Action::Publish => webrtc.prepare_publish(hub, app, stream, offer, reservation).await,
        }
    };
    let (prepared, grant) = match services.admission.admit(request, session).await {
        Ok(admitted) => admitted,
        Err(Refused::Denied(_)) => return failure(StatusCode::FORBIDDEN, "access denied"),
        Err(Refused::Unavailable(e)) => return refusal(e),
    };
    let ends_at = grant.ends_at(services.clock.as_ref()).filter(|_| call.settings.server.end_sessions_with_grant);
    let grant = GrantWatch { handle: services.sessions.register(app, stream, &grant), ends_at };
    let answered = webrtc.start(prepared, grant);
    let mut reply = with_body(StatusCode::CREATED, "application/sdp", answered.sdp);
    let location = format!("/{app}/{}/{stream}/{}", protocol.as_str(), answered.id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        reply.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(note) = answered.left_out {
        reply.headers_mut().insert("x-rampart-audio", HeaderValue::from_static(note));
    }
    reply
}

/// The answer to an offer that could not be served.
fn refusal(e: WebRtcError) -> Reply {
    let status = match e {
        WebRtcError::NotLive => StatusCode::NOT_FOUND,
        WebRtcError::InUse => StatusCode::CONFLICT,
        WebRtcError::AddressFull(_) => StatusCode::TOO_MANY_REQUESTS,
        WebRtcError::Full | WebRtcError::AppFull(_) | WebRtcError::NoPort(..) => StatusCode::SERVICE_UNAVAILABLE,
        WebRtcError::Offer(_) => StatusCode::BAD_REQUEST,
    };
    failure(status, e)
}
