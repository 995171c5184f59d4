//! The one evaluation path `explain` and `test` share: a described request
//! goes through the gateway's own canonicalize, route, authenticate (with a
//! caller given or already resolved), body and authorize steps, without
//! forwarding anything. What the gateway would refuse, this refuses, with
//! the same status.

use std::fmt;

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::trace::{RuleTrace, TraceRecorder};
use crate::caller::{Caller, IdentitySource};
use crate::config::PassThroughMode;
use crate::error::GatewayError;
use crate::gateway::{parse_json, CanonicalRequest};
use crate::policy::{authorize_observed, Decision, DenyReason, Mode, PolicySet, RequestView};

/// A request to evaluate.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The method, as a client would send it (`GET`).
    pub method: String,
    /// The path with its query, as a client would send it.
    pub target: String,
    /// Request headers, in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body. A body with no `Content-Type` header is sent as
    /// `application/json`.
    pub body: Option<Vec<u8>>,
}

/// Who sends the probe, as the authenticate phase would have established it.
#[derive(Debug, Clone)]
pub enum ProbeCaller {
    /// No credential at all.
    Anonymous,
    /// A verified caller (given directly, or resolved from a real token).
    Known(Caller),
    /// The credential was refused (for example by token-info).
    Refused(GatewayError),
}

/// The gateway settings an evaluation depends on.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `limits.body_bytes`.
    pub body_limit: usize,
    /// `wix.pass_through`.
    pub pass_through: PassThroughMode,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            pass_through: PassThroughMode::StripBoundSession,
        }
    }
}

/// A probe that cannot be sent at all (a bad header name, say): a mistake in
/// the description, not a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError(pub String);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

/// What the gateway would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward, under this rule, with this mode and credential.
    Allow {
        /// The deciding rule.
        rule: String,
        /// How it forwards.
        mode: Mode,
        /// Which credential would reach Wix, in words.
        credential: String,
    },
    /// Refuse with this status.
    Deny {
        /// The HTTP status the client would get.
        status: u16,
        /// A stable snake_case reason: `no_route`, `caller_not_admitted`,
        /// `conditions_failed`, `bad_request`, `unauthenticated`,
        /// `payload_too_large`, `unsupported_media_type`, `unavailable`.
        reason: &'static str,
        /// The gateway's message for it.
        detail: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Allow { rule, mode, .. } => write!(f, "allow by {rule} ({mode})"),
            Outcome::Deny {
                status,
                reason,
                detail,
            } => write!(f, "deny {status} ({reason}): {detail}"),
        }
    }
}

/// One evaluated probe: its canonical form, the trace and the outcome.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `METHOD /canonical/path?query`, or the target as given if it was refused.
    pub request: String,
    /// Every rule the route matched, in precedence order.
    pub rules: Vec<RuleTrace>,
    /// The decision.
    pub outcome: Outcome,
}

impl Evaluation {
    /// Whether the request would be forwarded.
    pub fn allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allow { .. })
    }
}

fn refused(error: &GatewayError) -> Outcome {
    let reason = match error {
        GatewayError::BadRequest(_) => "bad_request",
        GatewayError::Unauthenticated(_) => "unauthenticated",
        GatewayError::PayloadTooLarge(_) => "payload_too_large",
        GatewayError::UnsupportedMediaType => "unsupported_media_type",
        GatewayError::Forbidden | GatewayError::OriginNotAllowed => "forbidden",
        _ => "unavailable",
    };
    Outcome::Deny {
        status: error.status_and_code().0.as_u16(),
        reason,
        detail: error.to_string(),
    }
}

fn denied(reason: DenyReason) -> Outcome {
    Outcome::Deny {
        status: 403,
        reason: reason.as_str(),
        detail: GatewayError::Forbidden.to_string(),
    }
}

/// The headers of a probe, as the gateway would receive them.
pub fn probe_headers(probe: &Probe) -> Result<HeaderMap, ProbeError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &probe.headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ProbeError(format!("`{name}` is not a valid header name")))?;
        if name == header::AUTHORIZATION {
            return Err(ProbeError(
                "give the caller's token with the caller (`--token`), not as a header".into(),
            ));
        }
        let value = HeaderValue::from_str(value.trim()).map_err(|_| {
            ProbeError(format!("the value of `{name}` is not a valid header value"))
        })?;
        headers.append(name, value);
    }
    if let Some(body) = &probe.body {
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    Ok(headers)
}

/// Evaluates `probe` from `caller` against `policies`, as the gateway would.
pub fn evaluate(
    policies: &PolicySet,
    probe: &Probe,
    caller: &ProbeCaller,
    settings: &Settings,
) -> Result<Evaluation, ProbeError> {
    let method = Method::from_bytes(probe.method.as_bytes())
        .map_err(|_| ProbeError(format!("`{}` is not an HTTP method", probe.method)))?;
    let headers = probe_headers(probe)?;
    let mut evaluation = Evaluation {
        request: format!("{method} {}", probe.target),
        rules: Vec::new(),
        outcome: denied(DenyReason::NoRoute),
    };

    // canonicalize
    let uri = probe.target.parse::<Uri>();
    let canonical = match uri
        .as_ref()
        .map_err(|_| GatewayError::BadRequest("not a valid request target"))
        .and_then(|uri| CanonicalRequest::parse(&method, uri, &headers))
    {
        Ok(canonical) => canonical,
        Err(error) => {
            evaluation.outcome = refused(&error);
            return Ok(evaluation);
        }
    };
    evaluation.request = format!(
        "{} {}",
        canonical.method,
        canonical.path_and_query(|_| false)
    );

    // route
    let segments = canonical.segment_refs();
    let matches = policies.route(&canonical.method, &segments);
    let untouched = |m: &crate::policy::RouteMatch<'_>| RuleTrace {
        id: m.rule.id().to_owned(),
        file: m.rule.file().to_path_buf(),
        at: m.rule.position(),
        mode: m.rule.mode(),
        captures: m
            .captures(&segments)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        outcome: None,
        conditions: None,
    };
    evaluation.rules = matches.iter().map(untouched).collect();
    if matches.is_empty() {
        return Ok(evaluation);
    }

    // authenticate: a signed instance only counts where a routed rule takes one.
    let caller = match caller {
        ProbeCaller::Known(caller)
            if caller.source == IdentitySource::SignedInstance
                && !crate::policy::accepted_by_any(&matches, IdentitySource::SignedInstance) =>
        {
            Err(GatewayError::Unauthenticated("missing access token"))
        }
        ProbeCaller::Known(caller) => Ok(caller),
        ProbeCaller::Anonymous => Err(GatewayError::Unauthenticated("missing access token")),
        ProbeCaller::Refused(error) => Err(error.clone()),
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => {
            evaluation.outcome = refused(&error);
            return Ok(evaluation);
        }
    };

    // authorize: the body is read only when a rule that could admit this caller reads it.
    let json = if crate::policy::body_needed(&matches, caller) {
        let bytes = probe.body.as_deref().unwrap_or_default();
        if bytes.len() > settings.body_limit {
            evaluation.outcome = refused(&GatewayError::PayloadTooLarge(settings.body_limit));
            return Ok(evaluation);
        }
        match parse_json(&headers, bytes) {
            Ok(json) => json,
            Err(error) => {
                evaluation.outcome = refused(&error);
                return Ok(evaluation);
            }
        }
    } else {
        None
    };
    let view = RequestView {
        segments: &segments,
        query: &canonical.query,
        headers: &headers,
        body: json.as_ref(),
    };
    let mut recorder = TraceRecorder::default();
    let decision = authorize_observed(&matches, &view, caller, &mut recorder);
    for (slot, mut observed) in evaluation.rules.iter_mut().zip(recorder.rules) {
        observed.captures = std::mem::take(&mut slot.captures);
        *slot = observed;
    }
    evaluation.outcome = match decision {
        Decision::Allow(m) => Outcome::Allow {
            rule: m.rule.id().to_owned(),
            mode: m.rule.mode(),
            credential: credential(m.rule.mode(), caller, settings.pass_through),
        },
        Decision::Deny(reason) => denied(reason),
    };
    Ok(evaluation)
}

/// The credential phase, in words.
fn credential(mode: Mode, caller: &Caller, pass_through: PassThroughMode) -> String {
    match (mode, pass_through) {
        (Mode::Elevate, _) => format!(
            "app token for instance {} (client_credentials); the caller's credential is not forwarded",
            caller.instance_id
        ),
        (Mode::PassThrough, PassThroughMode::StripBoundSession) => {
            "the caller's token, exchanged via strip_bound_session".to_owned()
        }
        (Mode::PassThrough, PassThroughMode::Raw) => "the caller's token, as received (raw)".to_owned(),
    }
}
