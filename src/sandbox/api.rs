//! The catch-all Wix API: any path that is not OAuth or `/_sandbox/`. It
//! records who called and echoes the request back, so a test can see exactly
//! what the gateway sent upstream.

use std::time::Duration;

use crate::server::IncomingBody;
use http::{header, request::Parts, HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::{
    respond::{self, error, read_body, set_request_id},
    state::{now, request_id, Credential, RecordedRequest, Shared},
};
use crate::{body::Body, secret::Fingerprint};

/// Longest `_sandbox_delay_ms` accepted: enough for any timeout test, short
/// enough that a typo cannot stall a suite.
const MAX_DELAY_MS: u64 = 30_000;

/// Answers one API call. The call is counted and recorded before anything
/// is decided, so "nothing reached Wix" is checkable even for refused calls.
pub(super) async fn handle(shared: &Shared, request: Request<IncomingBody>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await;
    let credential = credential(shared, &parts.headers);
    let body_bytes = body
        .as_ref()
        .map(|bytes| bytes.as_ref())
        .unwrap_or_default();
    shared.record_api_call(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        credential: credential.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(body_bytes).into_owned(),
    });
    tracing::debug!(method = %parts.method, path = parts.uri.path(), ?credential, "sandbox API call");

    let mut response = match body {
        Ok(bytes) => answer(shared, &parts, credential, &bytes).await,
        Err(problem) => problem.response(),
    };
    if !response.headers().contains_key("x-wix-request-id") {
        set_request_id(&mut response, &request_id());
    }
    // The SDK sends X-Wix-Consistent back on later calls; echoing it lets a
    // test check that the gateway passes it through both ways.
    for value in parts.headers.get_all("x-wix-consistent") {
        response
            .headers_mut()
            .append("x-wix-consistent", value.clone());
    }
    response
}

async fn answer(
    shared: &Shared,
    parts: &Parts,
    credential: Credential,
    body: &[u8],
) -> Response<Body> {
    let controls = match Controls::parse(parts.uri.query()) {
        Ok(controls) => controls,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Some(delay) = controls.delay {
        shared.sleep(delay).await;
    }
    if matches!(credential, Credential::None | Credential::Invalid) {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid access token");
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    let echo = json!({
        "calledAs": credential,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "body": body,
    });
    respond::json(controls.status.unwrap_or(StatusCode::OK), &echo)
}

/// Judges the `Authorization` header. The raw token is what Wix expects; a
/// `Bearer ` prefix is tolerated so a sloppy client is not confused with a
/// bad token.
fn credential(shared: &Shared, headers: &HeaderMap) -> Credential {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credential::None;
    };
    if values.next().is_some() {
        // Two credentials: which one would Wix pick? Neither.
        return Credential::Invalid;
    }
    let Some(token) = token_of(value) else {
        return Credential::Invalid;
    };
    let credential = match shared.lookup(token) {
        Some(record) if record.is_live(now()) => record.credential(),
        _ => Credential::Invalid,
    };
    tracing::trace!(token = %Fingerprint::of(token.as_bytes()), "sandbox API credential");
    credential
}

fn token_of(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// The `_sandbox_*` query parameters a test uses to shape the answer.
#[derive(Debug, Default)]
struct Controls {
    delay: Option<Duration>,
    status: Option<StatusCode>,
}

impl Controls {
    fn parse(query: Option<&str>) -> Result<Self, &'static str> {
        let mut controls = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_sandbox_delay_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| *ms <= MAX_DELAY_MS)
                        .ok_or("_sandbox_delay_ms must be a number of milliseconds up to 30000")?;
                    controls.delay = Some(Duration::from_millis(ms));
                }
                "_sandbox_status" => {
                    let status = value
                        .parse::<u16>()
                        .ok()
                        .filter(|code| (200..=599).contains(code))
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .ok_or("_sandbox_status must be an HTTP status from 200 to 599")?;
                    controls.status = Some(status);
                }
                _ => {}
            }
        }
        Ok(controls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_parse() {
        let controls =
            Controls::parse(Some("a=1&_sandbox_delay_ms=250&_sandbox_status=503")).unwrap();
        assert_eq!(controls.delay, Some(Duration::from_millis(250)));
        assert_eq!(controls.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(Controls::parse(None).unwrap().delay.is_none());
        assert!(Controls::parse(Some("_sandbox_delay_ms=30001")).is_err());
        assert!(Controls::parse(Some("_sandbox_status=abc")).is_err());
        assert!(Controls::parse(Some("_sandbox_status=101")).is_err());
    }

    #[test]
    fn bearer_prefix_is_tolerated() {
        let value = HeaderValue::from_static("Bearer OauthNG.JWS.a.b.c");
        assert_eq!(token_of(&value), Some("OauthNG.JWS.a.b.c"));
        let value = HeaderValue::from_static("OauthNG.JWS.a.b.c");
        assert_eq!(token_of(&value), Some("OauthNG.JWS.a.b.c"));
        let value = HeaderValue::from_static("bearer  OauthNG.JWS.a.b.c");
        assert_eq!(token_of(&value), Some("OauthNG.JWS.a.b.c"));
        assert_eq!(token_of(&HeaderValue::from_static("")), None);
    }
}
