//! Wix's OAuth endpoints: `POST /oauth2/token-info` (who is this token?) and
//! `POST /oauth2/token` (the `client_credentials` and `strip_bound_session`
//! grants).

use std::time::Duration;

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::{
    respond::{self, error},
    state::{now, Fault, Origin, Shared, TokenRecord},
};
use crate::{body::Body, secret::Fingerprint};

/// How long a `Hang` fault holds token-info before giving up with 503.
const HANG: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct TokenInfoRequest {
    token: String,
}

/// `POST /oauth2/token-info`.
///
/// Expiry is reported only through `exp`: an expired token that was not
/// revoked still answers `active: true`. Real Wix says `active: false`, but
/// the SDK ignores both, so this makes sure the gateway checks `exp` itself.
pub(super) async fn token_info(shared: &Shared, body: &[u8]) -> Response<Body> {
    shared.count(|stats| stats.token_info_calls += 1);
    match shared.token_info_fault() {
        None => {}
        Some(Fault::Status(status)) => {
            // A 1xx or out-of-range status cannot end an HTTP exchange.
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(|status| !status.is_informational())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "injected token-info fault");
        }
        Some(Fault::Hang) => {
            shared.sleep(HANG).await;
            return error(StatusCode::SERVICE_UNAVAILABLE, "token-info hung");
        }
    }
    let request: TokenInfoRequest = match respond::parse(body) {
        Ok(request) => request,
        Err(rejection) => return rejection.response(),
    };
    let record = shared
        .lookup(&request.token)
        .filter(|record| !record.revoked);
    tracing::debug!(
        token = %Fingerprint::of(request.token.as_bytes()),
        known = record.is_some(),
        "sandbox token-info"
    );
    let Some(record) = record else {
        return respond::json(StatusCode::OK, &json!({"active": false}));
    };
    respond::json(StatusCode::OK, &token_info_body(&record))
}

fn token_info_body(record: &TokenRecord) -> Value {
    let mut body = Map::new();
    body.insert("active".into(), true.into());
    body.insert("subjectType".into(), record.subject_type.clone().into());
    body.insert("subjectId".into(), record.subject_id.clone().into());
    body.insert("exp".into(), record.exp.into());
    body.insert("iat".into(), record.iat.into());
    for (name, value) in [
        ("clientId", &record.client_id),
        ("siteId", &record.site_id),
        ("instanceId", &record.instance_id),
    ] {
        if let Some(value) = value {
            body.insert(name.into(), value.clone().into());
        }
    }
    Value::Object(body)
}

/// The union of both grants' fields; which ones matter depends on
/// `grant_type`.
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    instance_id: Option<String>,
    access_token: Option<String>,
}

/// `POST /oauth2/token`.
pub(super) fn token(shared: &Shared, body: &[u8]) -> Response<Body> {
    let request: TokenRequest = match respond::parse(body) {
        Ok(request) => request,
        Err(rejection) => return rejection.response(),
    };
    match request.grant_type.as_deref() {
        Some("client_credentials") => client_credentials(shared, request),
        Some("strip_bound_session") => strip_bound_session(shared, request),
        _ => error(StatusCode::BAD_REQUEST, "unsupported grant_type"),
    }
}

/// Compares in constant time, as a real authorization server would; a
/// missing value never matches.
fn same(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

fn client_credentials(shared: &Shared, request: TokenRequest) -> Response<Body> {
    shared.count(|stats| stats.client_credentials_calls += 1);
    let config = &shared.config;
    if request.client_id.as_deref() != Some(config.app_id.as_str())
        || !same(request.client_secret.as_deref(), config.app_secret.expose())
    {
        return error(StatusCode::UNAUTHORIZED, "invalid client credentials");
    }
    let Some(instance_id) = request.instance_id.filter(|id| !id.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "instance_id is required");
    };
    let now = now();
    let ttl = i64::try_from(config.app_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let access_token = shared.issue(TokenRecord {
        subject_type: "APP".into(),
        subject_id: config.app_id.clone(),
        client_id: Some(config.app_id.clone()),
        site_id: None,
        instance_id: Some(instance_id),
        iat: now,
        exp: now.saturating_add(ttl),
        revoked: false,
        origin: Origin::ClientCredentials,
    });
    tracing::debug!(
        token = %Fingerprint::of(access_token.as_bytes()),
        "sandbox issued an app token"
    );
    respond::json(
        StatusCode::OK,
        &json!({"access_token": access_token, "expires_in": ttl}),
    )
}

fn strip_bound_session(shared: &Shared, request: TokenRequest) -> Response<Body> {
    shared.count(|stats| stats.strip_bound_session_calls += 1);
    if !same(
        request.client_secret.as_deref(),
        shared.config.app_secret.expose(),
    ) {
        return error(StatusCode::UNAUTHORIZED, "invalid client secret");
    }
    let now = now();
    let original = request
        .access_token
        .as_deref()
        .and_then(|token| shared.lookup(token))
        .filter(|record| {
            record.is_live(now)
                && record.origin != Origin::ClientCredentials
                && matches!(record.subject_type.as_str(), "VISITOR" | "MEMBER" | "USER")
        });
    let Some(original) = original else {
        return error(StatusCode::UNAUTHORIZED, "invalid access_token");
    };
    // The stripped token speaks for the same caller until the same moment,
    // so token-info on it answers exactly like on the original.
    let expires_in = original.exp - now;
    let access_token = shared.issue(TokenRecord {
        origin: Origin::StripBoundSession,
        ..original
    });
    respond::json(
        StatusCode::OK,
        &json!({"access_token": access_token, "expires_in": expires_in}),
    )
}
