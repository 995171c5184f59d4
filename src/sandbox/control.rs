//! The control API under `/_sandbox/`: lets a test (or the demo, from another
//! process) mint and revoke tokens, read what reached the API, inject faults
//! and sign legacy instances. Control calls are not recorded or counted.

use crate::server::IncomingBody;
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    respond::{self, no_content, parse, read_body, Reject},
    state::{Fault, MintRequest, Shared},
};
use crate::{body::Body, identity::signed_instance};

#[derive(Deserialize)]
struct RevokeRequest {
    token: String,
}

#[derive(Deserialize)]
struct FaultsRequest {
    #[serde(rename = "tokenInfo", default)]
    token_info: Option<Fault>,
}

/// Answers a request whose path starts with `/_sandbox`.
pub(super) async fn handle(shared: &Shared, request: Request<IncomingBody>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(problem) => return problem.response(),
    };
    let path = parts.uri.path();
    let method = &parts.method;
    let result = match (path, method) {
        ("/_sandbox/tokens", &Method::POST) => parse::<MintRequest>(&body).and_then(|request| {
            if request.subject_type.is_empty() {
                return Err(Reject::new(
                    StatusCode::BAD_REQUEST,
                    "subjectType is required",
                ));
            }
            Ok(respond::json(StatusCode::OK, &shared.mint(request)))
        }),
        ("/_sandbox/revoke", &Method::POST) => parse::<RevokeRequest>(&body).map(|request| {
            shared.revoke(&request.token);
            no_content()
        }),
        ("/_sandbox/requests", &Method::GET) => {
            Ok(respond::json(StatusCode::OK, &shared.requests()))
        }
        ("/_sandbox/requests", &Method::DELETE) => {
            shared.clear_requests();
            Ok(no_content())
        }
        ("/_sandbox/stats", &Method::GET) => Ok(respond::json(StatusCode::OK, &shared.stats())),
        ("/_sandbox/faults", &Method::POST) => parse::<FaultsRequest>(&body).and_then(|request| {
            if let Some(Fault::Status(status)) = request.token_info {
                if !(200..=599).contains(&status) {
                    return Err(Reject::new(
                        StatusCode::BAD_REQUEST,
                        "fault status must be from 200 to 599",
                    ));
                }
            }
            shared.set_token_info_fault(request.token_info);
            Ok(no_content())
        }),
        ("/_sandbox/expire-app-tokens", &Method::POST) => {
            shared.expire_app_tokens();
            Ok(no_content())
        }
        ("/_sandbox/signed-instance", &Method::POST) => parse::<Value>(&body).and_then(|payload| {
            if !payload.is_object() {
                return Err(Reject::new(
                    StatusCode::BAD_REQUEST,
                    "the instance payload must be a JSON object",
                ));
            }
            let instance = signed_instance::sign(&payload, &shared.config.app_secret);
            Ok(respond::json(
                StatusCode::OK,
                &json!({"instance": instance}),
            ))
        }),
        (
            "/_sandbox/tokens"
            | "/_sandbox/revoke"
            | "/_sandbox/requests"
            | "/_sandbox/stats"
            | "/_sandbox/faults"
            | "/_sandbox/expire-app-tokens"
            | "/_sandbox/signed-instance",
            _,
        ) => Err(Reject::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this sandbox endpoint",
        )),
        _ => Err(Reject::new(
            StatusCode::NOT_FOUND,
            "no such sandbox endpoint",
        )),
    };
    result.unwrap_or_else(Reject::response)
}
