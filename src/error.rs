//! The one error type of the request path, and the one place it becomes a
//! response.
//!
//! Every rejection is shaped like a Wix API error (see Wix's
//! `details.applicationError`), so a frontend handles a gateway error like any
//! other Wix error, and carries the request id.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::body::{self, Body};

/// Why the gateway refused or failed a request.
///
/// The `Display` text is what the client sees: it never names a rule, a
/// condition, a token or an upstream address. Details go to the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// Malformed or ambiguous request (path, query, headers, body).
    #[error("{0}")]
    BadRequest(&'static str),
    /// No credential, or one the identity service does not vouch for.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// No rule allows this request.
    #[error("this request is not allowed")]
    Forbidden,
    /// The request came from a browser origin that is not configured.
    #[error("this origin is not allowed")]
    OriginNotAllowed,
    /// The request head (request line and header fields) is too large.
    #[error("the request head is too large")]
    HeadTooLarge,
    /// The body is larger than the configured limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A rule reads the body, but it is not JSON.
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// Wix's token-info could not be asked (down, timing out, 5xx).
    #[error("the identity service is unavailable")]
    IdentityUnavailable,
    /// The app credential could not be minted.
    #[error("the app credential could not be obtained")]
    CredentialUnavailable,
    /// The upstream could not be reached or broke the exchange.
    #[error("the upstream service is unavailable")]
    BadGateway,
    /// The upstream did not answer in time.
    #[error("the upstream service timed out")]
    GatewayTimeout,
    /// A rate limit on the rule is spent for this caller; retry after the
    /// duration.
    #[error("too many requests")]
    RateLimited(std::time::Duration),
    /// The gateway has as many requests in flight as it allows.
    #[error("the gateway is at capacity")]
    Overloaded,
    /// The client sent its body too slowly.
    #[error("the request body was not received in time")]
    BodyTimeout,
}

impl GatewayError {
    /// The HTTP status and Wix error code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Forbidden | Self::OriginNotAllowed => {
                (StatusCode::FORBIDDEN, "PERMISSION_DENIED")
            }
            Self::HeadTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "INVALID_ARGUMENT",
            ),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "INVALID_ARGUMENT"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_ARGUMENT"),
            Self::IdentityUnavailable | Self::CredentialUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
            }
            Self::BadGateway => (StatusCode::BAD_GATEWAY, "UNAVAILABLE"),
            Self::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Self::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "DEADLINE_EXCEEDED"),
        }
    }

    /// A short, stable name for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::HeadTooLarge => "head_too_large",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::IdentityUnavailable => "identity_unavailable",
            Self::CredentialUnavailable => "credential_unavailable",
            Self::BadGateway => "bad_gateway",
            Self::GatewayTimeout => "gateway_timeout",
            Self::RateLimited(_) => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::BodyTimeout => "body_timeout",
        }
    }

    /// The Wix-shaped JSON response for this error.
    pub fn to_response(&self, request_id: &str) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let mut response = wix_error_response(status, code, &self.to_string(), request_id);
        let retry_after = match self {
            // Whole seconds, rounded up: retrying earlier is refused again.
            Self::RateLimited(wait) => Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
            Self::Overloaded => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// A fresh request id: 128 random bits in hex.
pub fn new_request_id() -> HeaderValue {
    let mut hex = [0u8; 32];
    hex::encode_to_slice(rand::random::<u128>().to_be_bytes(), &mut hex)
        .expect("16 bytes are 32 hex digits");
    HeaderValue::from_bytes(&hex).expect("hex is a valid header value")
}

/// A Wix-shaped JSON error response:
/// `{"message", "details": {"applicationError": {"code", "description", "data": {"requestId"}}}}`.
pub fn wix_error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let body = json!({
        "message": message,
        "details": {
            "applicationError": {
                "code": code,
                "description": message,
                "data": { "requestId": request_id },
            }
        }
    });
    let mut response = Response::new(body::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
