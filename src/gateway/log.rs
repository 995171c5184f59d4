//! The logging phase: one decision record per request, a JSON line in the
//! decision log, counted in the metrics. Tokens never appear; the caller id
//! is logged as a fingerprint.

use std::{
    io::Write as _,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use http::{HeaderValue, Method, StatusCode};

use crate::{
    caller::Caller,
    decision_log::DecisionLog,
    error::GatewayError,
    metrics::{status_class, LastSeries, Metrics, RequestLabels},
    policy::{DenyReason, Mode, Rule},
    secret::Fingerprint,
};

/// What was decided about one request, filled in phase by phase.
#[derive(Debug, Default)]
pub(super) struct DecisionRecord {
    path: Option<String>,
    rule: Option<String>,
    mode: Option<Mode>,
    caller_type: Option<&'static str>,
    caller: Option<Fingerprint>,
    instance: Option<Arc<str>>,
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

    /// The canonical path as logged: also the one forwarded, so the log
    /// never names a path other than the one Wix received.
    pub fn logged_path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn caller(&mut self, caller: &Caller) {
        self.caller_type = Some(caller.subject_type.as_str());
        self.caller = Some(caller.fingerprint());
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
            self.reason = Some(error.reason().to_owned());
        }
    }

    /// Writes the record to the decision log and counts it in the metrics.
    /// Done once per request: the rule id moves into the metric's label
    /// rather than being copied.
    pub fn finish(
        &mut self,
        done: Finished<'_>,
        log: &DecisionLog,
        metrics: &Metrics,
        series: &mut LastSeries,
    ) {
        let decision = if self.rule.is_some() { "allow" } else { "deny" };
        let status = done.status.as_u16();
        // Written straight from borrowed fields: no intermediate JSON tree.
        let line = Line {
            ts: crate::clock::wall(),
            request_id: done.request_id,
            peer: done.peer.ip(),
            method: done.method.as_str(),
            path: self.path.as_deref(),
            decision,
            reason: self.reason.as_deref(),
            rule: self.rule.as_deref(),
            mode: self.mode.map(Mode::as_str),
            caller_type: self.caller_type,
            caller: self.caller.as_ref().map(Fingerprint::as_str),
            instance: self.instance.as_deref(),
            status,
            upstream_status: self.upstream_status,
            wix_request_id: self.wix_request_id.as_deref(),
            retried: self.retried,
            latency: done.latency,
            upstream_latency: self.upstream_latency,
        };
        log.record(|out| line.write_json(out));

        series.count(
            &metrics.requests,
            RequestLabels {
                rule: self.rule.take().unwrap_or_default(),
                decision,
                status: status_class(status),
            },
        );
        metrics.request_duration.observe(done.latency.as_secs_f64());
        if let Some(upstream) = self.upstream_latency {
            metrics.upstream_duration.observe(upstream.as_secs_f64());
        }
    }
}

/// One decision record as written: borrowed from the record, nothing copied.
struct Line<'a> {
    ts: SystemTime,
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
    latency: Duration,
    upstream_latency: Option<Duration>,
}

impl Line<'_> {
    /// The line as one JSON object, written field by field: serde_json's
    /// escaping scan of every string was the largest cost of the record
    /// (bench/profile-notes.md), and almost every value here needs none.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = JsonObject::new(out);
        object.member(key!("ts")).timestamp(self.ts);
        object
            .member(key!("request_id"))
            .string(Some(self.request_id));
        object.member(key!("peer")).ip(self.peer);
        object.member(key!("method")).plain(Some(self.method));
        object.member(key!("path")).string(self.path);
        object.member(key!("decision")).plain(Some(self.decision));
        object.member(key!("reason")).string(self.reason);
        object.member(key!("rule")).string(self.rule);
        object.member(key!("mode")).plain(self.mode);
        object.member(key!("caller_type")).plain(self.caller_type);
        object.member(key!("caller")).string(self.caller);
        object.member(key!("instance")).string(self.instance);
        object.member(key!("status")).integer(Some(self.status));
        object
            .member(key!("upstream_status"))
            .integer(self.upstream_status);
        object
            .member(key!("wix_request_id"))
            .string(self.wix_request_id);
        object.member(key!("retried")).boolean(self.retried);
        object.member(key!("latency_ms")).millis(Some(self.latency));
        object
            .member(key!("upstream_ms"))
            .millis(self.upstream_latency);
        object.end();
    }
}

/// A member name as written: quoted, with its colon, one constant to copy.
macro_rules! key {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}
use key;

/// Writes a JSON object's members in order: [`JsonObject::member`], then
/// one value.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    opened: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, opened: false }
    }

    /// Starts a member named `name` (as [`key!`] writes it), for one of
    /// the value writers below. Always inlined: the name's length is then a
    /// constant, and copying it a few moves instead of a call to `memcpy`.
    #[inline(always)]
    fn member(&mut self, name: &str) -> &mut Self {
        self.out.push(if self.opened { b',' } else { b'{' });
        self.opened = true;
        self.out.extend_from_slice(name.as_bytes());
        self
    }

    /// Appends `bytes`: a few bytes one at a time (most values here are
    /// short, and a call to `memcpy` costs more than copying them), more
    /// in one copy.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() <= 8 {
            for &b in bytes {
                self.out.push(b);
            }
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    /// A string member, or `null`.
    fn string(&mut self, value: Option<&str>) {
        match value {
            Some(value) if !is_plain(value) => {
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *self.out, value);
            }
            _ => self.plain(value),
        }
    }

    /// A string member that needs no escaping by construction (a method, a
    /// token, one of the gateway's own words), or `null`: nothing to scan.
    fn plain(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            self.out.extend_from_slice(b"null");
            return;
        };
        debug_assert!(is_plain(value));
        self.out.push(b'"');
        self.put(value.as_bytes());
        self.out.push(b'"');
    }

    /// An IP address as a string: IPv4 digit by digit (the common case,
    /// without the formatting machinery), IPv6 as `Display` writes it.
    fn ip(&mut self, ip: IpAddr) {
        self.out.push(b'"');
        match ip {
            IpAddr::V4(v4) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(b'.');
                    }
                    self.put(digits.format(octet).as_bytes());
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(self.out, "{v6}");
            }
        }
        self.out.push(b'"');
    }

    /// An integer member, or `null`.
    fn integer(&mut self, value: Option<impl itoa::Integer>) {
        match value {
            Some(value) => self.put(itoa::Buffer::new().format(value).as_bytes()),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// A duration in milliseconds with three decimals (whole microseconds,
    /// truncated), or `null`.
    fn millis(&mut self, value: Option<Duration>) {
        let Some(value) = value else {
            self.out.extend_from_slice(b"null");
            return;
        };
        let micros = value.as_micros();
        self.put(itoa::Buffer::new().format(micros / 1000).as_bytes());
        self.thousandths((micros % 1000) as u16);
    }

    /// `.` and three digits: the fraction of a value counted in thousands.
    fn thousandths(&mut self, fraction: u16) {
        self.out.extend_from_slice(&[
            b'.',
            b'0' + (fraction / 100) as u8,
            b'0' + (fraction / 10 % 10) as u8,
            b'0' + (fraction % 10) as u8,
        ]);
    }

    fn boolean(&mut self, value: bool) {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// An RFC 3339 UTC timestamp with milliseconds. The calendar part is
    /// formatted once per second per thread, not once per record.
    fn timestamp(&mut self, at: SystemTime) {
        thread_local! {
            /// The second last formatted, and its `YYYY-MM-DDTHH:MM:SS`.
            static SECOND: std::cell::RefCell<(u64, [u8; 19])> =
                const { std::cell::RefCell::new((u64::MAX, [0; 19])) };
        }
        let since_epoch = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let second = since_epoch.as_secs();
        self.out.push(b'"');
        SECOND.with_borrow_mut(|(cached, prefix)| {
            if *cached != second {
                let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(second);
                let formatted = humantime::format_rfc3339_seconds(whole).to_string();
                prefix.copy_from_slice(&formatted.as_bytes()[..19]);
                *cached = second;
            }
            self.out.extend_from_slice(prefix);
        });
        self.thousandths(since_epoch.subsec_millis() as u16);
        self.out.extend_from_slice(b"Z\"");
    }

    fn end(self) {
        if !self.opened {
            self.out.push(b'{');
        }
        self.out.push(b'}');
    }
}

/// A request being answered: its decision record, written exactly once —
/// when the answer is ready, or, if the client goes away first (an HTTP/2
/// stream reset drops the request's future), when the request is dropped,
/// with status 499. Either way the in-flight gauge comes back down.
pub(super) struct Pending<'g> {
    record: DecisionRecord,
    request_id: &'g str,
    method: Method,
    peer: SocketAddr,
    started: Instant,
    log: &'g DecisionLog,
    metrics: &'g Metrics,
    /// The connection's last series, where this request is likely counted.
    series: &'g mut LastSeries,
    written: bool,
}

impl<'g> Pending<'g> {
    /// Starts accounting for one request.
    pub fn new(
        request_id: &'g str,
        method: Method,
        peer: SocketAddr,
        log: &'g DecisionLog,
        metrics: &'g Metrics,
        series: &'g mut LastSeries,
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
            series,
            written: false,
        }
    }

    /// The record the phases fill in.
    pub fn record(&mut self) -> &mut DecisionRecord {
        &mut self.record
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        self.request_id
    }

    /// Writes the record for an answer with `status`.
    pub fn finish(mut self, status: StatusCode) {
        self.write(status);
    }

    fn write(&mut self, status: StatusCode) {
        self.written = true;
        let done = Finished {
            request_id: self.request_id,
            method: &self.method,
            peer: self.peer,
            status,
            latency: self.started.elapsed(),
        };
        self.record
            .finish(done, self.log, self.metrics, &mut *self.series);
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

/// Whether `value` goes into JSON as it is, without escapes.
fn is_plain(value: &str) -> bool {
    // No early exit, so the compiler checks many bytes per step.
    value.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(path: Option<&'a str>, upstream_latency: Option<Duration>) -> Line<'a> {
        Line {
            ts: SystemTime::UNIX_EPOCH,
            request_id: "abc",
            peer: "::1".parse().unwrap(),
            method: "GET",
            path,
            decision: "deny",
            reason: None,
            rule: Some("r-1"),
            mode: Some("elevate"),
            caller_type: None,
            caller: None,
            instance: Some("inst"),
            status: 403,
            upstream_status: None,
            wix_request_id: None,
            retried: false,
            latency: Duration::from_micros(250),
            upstream_latency,
        }
    }

    fn parsed(line: &Line<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        line.write_json(&mut out);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn a_line_is_one_json_object_with_every_field() {
        let value = parsed(&line(Some("/a/b"), Some(Duration::from_micros(1500))));
        assert_eq!(
            value,
            serde_json::json!({
                "ts": "1970-01-01T00:00:00.000Z", "request_id": "abc", "peer": "::1",
                "method": "GET", "path": "/a/b", "decision": "deny", "reason": null,
                "rule": "r-1", "mode": "elevate", "caller_type": null, "caller": null,
                "instance": "inst", "status": 403, "upstream_status": null,
                "wix_request_id": null, "retried": false, "latency_ms": 0.25,
                "upstream_ms": 1.5,
            })
        );
    }

    #[test]
    fn timestamps_read_as_rfc_3339_with_milliseconds() {
        for offset in [
            0,
            999,
            1_000,
            1_234_567_890_123,
            1_795_000_000_001,
            1_795_000_000_999,
        ] {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(offset);
            let mut out = Vec::new();
            JsonObject::new(&mut out).member(key!("ts")).timestamp(at);
            let expected = format!("{{\"ts\":\"{}\"", humantime::format_rfc3339_millis(at));
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn numbers_are_json_numbers() {
        let mut out = Vec::new();
        let mut object = JsonObject::new(&mut out);
        object.member(key!("a")).integer(Some(65535u16));
        object
            .member(key!("b"))
            .millis(Some(Duration::from_nanos(1_234_567)));
        object.member(key!("c")).millis(None);
        object
            .member(key!("d"))
            .millis(Some(Duration::from_secs(12)));
        object
            .member(key!("e"))
            .millis(Some(Duration::from_micros(7)));
        object.member(key!("f")).ip("10.0.255.1".parse().unwrap());
        object.member(key!("g")).ip("2001:db8::1".parse().unwrap());
        object.end();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "a": 65535, "b": 1.234, "c": null, "d": 12000.0, "e": 0.007,
                "f": "10.0.255.1", "g": "2001:db8::1",
            })
        );
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let tricky = "/a\"b\\c\n\u{1}é";
        let value = parsed(&line(Some(tricky), None));
        assert_eq!(value["path"], tricky);
        assert_eq!(value["upstream_ms"], serde_json::Value::Null);
    }
}
