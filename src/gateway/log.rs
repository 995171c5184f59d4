//! The logging phase: one decision record per request, a JSON line in the
//! decision log, counted in the metrics. Tokens never appear; the caller id
//! is logged as a fingerprint.

use std::{
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use http::{HeaderValue, Method, StatusCode};

use serde::Serialize;

use crate::{
    caller::Caller,
    decision_log::DecisionLog,
    error::GatewayError,
    metrics::{status_class, Metrics, RequestLabels},
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
        self.instance = Some(caller.instance_id.to_string());
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
            self.reason = Some(error.reason().to_owned());
        }
    }

    /// Writes the record to the decision log and counts it in the metrics.
    pub fn finish(&self, done: Finished<'_>, log: &DecisionLog, metrics: &Metrics) {
        let decision = if self.rule.is_some() { "allow" } else { "deny" };
        let status = done.status.as_u16();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                rule: self.rule.clone().unwrap_or_default(),
                decision,
                status: status_class(status),
            })
            .inc();
        metrics.request_duration.observe(done.latency.as_secs_f64());
        if let Some(upstream) = self.upstream_latency {
            metrics.upstream_duration.observe(upstream.as_secs_f64());
        }
        // Written straight from borrowed fields: no intermediate JSON tree.
        log.record(&Line {
            ts: humantime::format_rfc3339_millis(SystemTime::now()),
            request_id: done.request_id,
            peer: done.peer.ip(),
            method: done.method.as_str(),
            path: self.path.as_deref(),
            decision,
            reason: self.reason.as_deref(),
            rule: self.rule.as_deref(),
            mode: self.mode.map(Mode::as_str),
            caller_type: self.caller_type,
            caller: self.caller.as_deref(),
            instance: self.instance.as_deref(),
            status,
            upstream_status: self.upstream_status,
            wix_request_id: self.wix_request_id.as_deref(),
            retried: self.retried,
            latency_ms: done.latency.as_secs_f64() * 1000.0,
            upstream_ms: self.upstream_latency.map(|d| d.as_secs_f64() * 1000.0),
        });
    }
}

/// One line of the decision log, as written.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(serialize_with = "display")]
    ts: humantime::Rfc3339Timestamp,
    request_id: &'a str,
    peer: std::net::IpAddr,
    method: &'a str,
    path: Option<&'a str>,
    decision: &'static str,
    reason: Option<&'a str>,
    rule: Option<&'a str>,
    mode: Option<&'static str>,
    caller_type: Option<&'static str>,
    caller: Option<&'a str>,
    instance: Option<&'a str>,
    status: u16,
    upstream_status: Option<u16>,
    wix_request_id: Option<&'a str>,
    retried: bool,
    latency_ms: f64,
    upstream_ms: Option<f64>,
}

fn display<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A request being answered: its decision record, written exactly once —
/// when the answer is ready, or, if the client goes away first (an HTTP/2
/// stream reset drops the request's future), when the request is dropped,
/// with status 499. Either way the in-flight gauge comes back down.
pub(super) struct Pending<'g> {
    record: DecisionRecord,
    request_id: String,
    method: Method,
    peer: SocketAddr,
    started: Instant,
    log: &'g DecisionLog,
    metrics: &'g Metrics,
    written: bool,
}

impl<'g> Pending<'g> {
    /// Starts accounting for one request.
    pub fn new(
        request_id: String,
        method: Method,
        peer: SocketAddr,
        log: &'g DecisionLog,
        metrics: &'g Metrics,
    ) -> Self {
        metrics.in_flight.inc();
        Self {
            record: DecisionRecord::default(),
            request_id,
            method,
            peer,
            started: Instant::now(),
            log,
            metrics,
            written: false,
        }
    }

    /// The record the phases fill in.
    pub fn record(&mut self) -> &mut DecisionRecord {
        &mut self.record
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Writes the record for an answer with `status`.
    pub fn finish(mut self, status: StatusCode) {
        self.write(status);
    }

    fn write(&mut self, status: StatusCode) {
        self.written = true;
        let done = Finished {
            request_id: &self.request_id,
            method: &self.method,
            peer: self.peer,
            status,
            latency: self.started.elapsed(),
        };
        self.record.finish(done, self.log, self.metrics);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.written {
            if self.record.reason.is_none() {
                self.record.reason = Some("client_closed".to_owned());
            }
            let closed = StatusCode::from_u16(499).expect("499 is a valid status code");
            self.write(closed);
        }
        self.metrics.in_flight.dec();
    }
}

/// How a request ended, for [`DecisionRecord::finish`].
pub(super) struct Finished<'a> {
    pub request_id: &'a str,
    pub method: &'a Method,
    pub peer: SocketAddr,
    pub status: StatusCode,
    pub latency: Duration,
}
