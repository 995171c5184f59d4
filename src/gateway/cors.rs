//! CORS for the site's frontend: exact configured origins only, echoed back
//! (never `*`), preflights answered by the gateway itself.

use std::collections::HashSet;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::{body, body::Body, config::CorsConfig, error::GatewayError};

/// Request headers a frontend may send: what `fetchWithAuth` adds and what
/// the gateway forwards.
const ALLOWED_HEADERS: &str =
    "authorization, content-type, accept, accept-language, x-wix-consistent, x-request-id";
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
const EXPOSED_HEADERS: &str = "x-request-id, x-wix-request-id, x-wix-consistent";

/// The compiled CORS settings.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: HashSet<String>,
    max_age: HeaderValue,
}

impl Cors {
    /// Compiles `config`.
    pub fn new(config: &CorsConfig) -> Self {
        Self {
            origins: config.allowed_origins.iter().cloned().collect(),
            max_age: HeaderValue::from(config.max_age.as_secs()),
        }
    }

    /// The request's origin, if it is one to answer with CORS headers.
    /// A browser request from any other origin is refused outright: a
    /// configured list means the gateway serves those sites only.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<Option<HeaderValue>, GatewayError> {
        if self.origins.is_empty() {
            return Ok(None);
        }
        match headers.get(header::ORIGIN) {
            None => Ok(None),
            Some(origin) => match origin.to_str() {
                Ok(text) if self.origins.contains(text) => Ok(Some(origin.clone())),
                _ => Err(GatewayError::OriginNotAllowed),
            },
        }
    }

    /// The answer to a CORS preflight from an allowed `origin`, if this is one.
    pub fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
        origin: Option<&HeaderValue>,
    ) -> Option<Response<Body>> {
        let origin = origin?;
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
        Some(response)
    }

    /// Adds the CORS headers of an allowed `origin` to an actual response.
    pub fn apply(headers: &mut HeaderMap, origin: &HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
