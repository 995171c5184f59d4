//! The one body type every response of the gateway and the sandbox uses.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};

/// Errors a streamed body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response or request body: a fixed buffer or a stream from upstream.
pub type Body = BoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}
