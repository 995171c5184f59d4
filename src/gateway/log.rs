//! The logging phase: one decision record per request, as a structured
//! `tracing` event under the target `wix_elevator::decision`. Tokens never
//! appear; the caller id is logged as a fingerprint.

use std::{net::SocketAddr, time::Duration};

use http::{HeaderValue, Method, StatusCode};

use crate::{
    caller::Caller,
    error::GatewayError,
    policy::{DenyReason, Mode, Rule},
    secret::fingerprint,
};

/// What was decided about one request, filled in phase by phase.
#[derive(Debug, Default)]
pub(super) struct DecisionRecord {
    path: Option<String>,
    rule: Option<String>,
    mode: Option<Mode>,
    caller_type: Option<&'static str>,
    caller: Option<String>,
    instance: Option<String>,
    reason: Option<String>,
    upstream_status: Option<u16>,
    wix_request_id: Option<String>,
    upstream_latency: Option<Duration>,
    retried: bool,
}

impl DecisionRecord {
    pub fn path(&mut self, path: String) {
        self.path = Some(path);
    }

    pub fn caller(&mut self, caller: &Caller) {
        self.caller_type = Some(caller.subject_type.as_str());
        self.caller = Some(fingerprint(caller.subject_id.as_bytes()));
        self.instance = Some(caller.instance_id.clone());
    }

    pub fn allow(&mut self, rule: &Rule) {
        self.rule = Some(rule.id().to_owned());
        self.mode = Some(rule.mode());
    }

    pub fn deny(&mut self, reason: DenyReason) {
        self.reason = Some(reason.to_string());
    }

    pub fn retried(&mut self) {
        self.retried = true;
    }

    pub fn upstream(
        &mut self,
        status: StatusCode,
        wix_request_id: Option<&HeaderValue>,
        took: Duration,
    ) {
        self.upstream_status = Some(status.as_u16());
        self.wix_request_id = wix_request_id
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        self.upstream_latency = Some(took);
    }

    /// Notes the reason of a rejection unless a phase already gave one.
    pub fn reject(&mut self, error: &GatewayError) {
        if self.reason.is_none() {
            let reason = match error {
                GatewayError::BadRequest(_) => "bad_request",
                GatewayError::Unauthenticated(_) => "unauthenticated",
                GatewayError::Forbidden => "forbidden",
                GatewayError::OriginNotAllowed => "origin_not_allowed",
                GatewayError::PayloadTooLarge(_) => "payload_too_large",
                GatewayError::UnsupportedMediaType => "unsupported_media_type",
                GatewayError::IdentityUnavailable => "identity_unavailable",
                GatewayError::CredentialUnavailable => "credential_unavailable",
                GatewayError::BadGateway => "bad_gateway",
                GatewayError::GatewayTimeout => "gateway_timeout",
            };
            self.reason = Some(reason.to_owned());
        }
    }

    /// Emits the record.
    pub fn emit(
        &self,
        request_id: &str,
        method: &Method,
        peer: SocketAddr,
        status: StatusCode,
        latency: Duration,
    ) {
        let decision = if self.rule.is_some() { "allow" } else { "deny" };
        tracing::info!(
            target: "wix_elevator::decision",
            request_id,
            peer = %peer.ip(),
            method = %method,
            path = self.path.as_deref(),
            decision,
            reason = self.reason.as_deref(),
            rule = self.rule.as_deref(),
            mode = self.mode.map(tracing::field::display),
            caller_type = self.caller_type,
            caller = self.caller.as_deref(),
            instance = self.instance.as_deref(),
            status = status.as_u16(),
            upstream_status = self.upstream_status,
            wix_request_id = self.wix_request_id.as_deref(),
            retried = self.retried,
            latency_us = latency.as_micros() as u64,
            upstream_us = self.upstream_latency.map(|d| d.as_micros() as u64),
            "decision"
        );
    }
}
