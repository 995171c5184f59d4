//! Small helpers every sandbox endpoint uses to read requests and build
//! responses, so that all of them answer in the same Wix shape.

use crate::server::IncomingBody;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

use super::state::request_id;
use crate::{
    body::{self, Body},
    error::wix_error_response,
};

/// Larger bodies are refused: the sandbox keeps every API body in memory.
pub(super) const MAX_BODY: usize = 10 * 1024 * 1024;

/// Why a request body could not be read.
#[derive(Debug)]
pub(super) enum BodyError {
    TooLarge,
    Broken,
}

impl BodyError {
    /// The Wix-shaped answer to this failure.
    pub fn response(&self) -> Response<Body> {
        match self {
            Self::TooLarge => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body is larger than {MAX_BODY} bytes"),
            ),
            Self::Broken => error(StatusCode::BAD_REQUEST, "request body could not be read"),
        }
    }
}

/// Reads the whole body, up to [`MAX_BODY`].
pub(super) async fn read_body(body: IncomingBody) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge)
        }
        Err(_) => Err(BodyError::Broken),
    }
}

/// The Wix error code that goes with `status`.
pub(super) fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status.is_server_error() => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// A Wix-shaped error with a fresh request id, also sent as
/// `x-wix-request-id` like Wix does.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Body> {
    let id = request_id();
    let mut response = wix_error_response(status, code_for(status), message, &id);
    set_request_id(&mut response, &id);
    response
}

/// Sets `x-wix-request-id`.
pub(super) fn set_request_id(response: &mut Response<Body>, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-wix-request-id", value);
    }
}

/// A JSON response.
pub(super) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(value).expect("sandbox responses always serialize");
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 204 with no body.
pub(super) fn no_content() -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A refusal not yet turned into a response; small, so it can travel in a
/// `Result` cheaply.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reject {
    status: StatusCode,
    message: &'static str,
}

impl Reject {
    /// A refusal with `status` and a client-facing `message`.
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self { status, message }
    }

    /// The Wix-shaped response.
    pub fn response(self) -> Response<Body> {
        error(self.status, self.message)
    }
}

/// Parses a JSON request body, refusing with 400 when it does not fit `T`.
/// The parser's message is left out: it can quote the body, tokens included.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|_| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            "request body is not the JSON this endpoint expects",
        )
    })
}
