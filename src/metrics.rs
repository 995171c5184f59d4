//! Prometheus metrics of one gateway, rendered in the OpenMetrics text
//! format (which Prometheus scrapes) on the admin listener's `/metrics`.
//!
//! Each gateway owns its registry rather than a process-global recorder, so
//! two gateways in one process (tests, the demo) never mix their counts.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The deciding rule, or empty when none decided.
    pub rule: String,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// `2xx`, `4xx`, ...
    pub status: &'static str,
}

/// The request counter series a connection's last request was counted in.
/// The next request usually counts in the same one (same rule, same
/// outcome), and finding it in the family again costs a hash of the labels
/// (SipHash, over the rule id) and a lock. The family never drops a series,
/// so a remembered one stays the family's.
#[derive(Debug, Default)]
pub struct LastSeries(Option<(RequestLabels, Counter)>);

impl LastSeries {
    /// Counts one request with `labels` in `family`.
    pub fn count(&mut self, family: &Family<RequestLabels, Counter>, labels: RequestLabels) {
        if let Some((last, counter)) = &self.0 {
            if *last == labels {
                counter.inc();
                return;
            }
        }
        let counter = family.get_or_create(&labels).clone();
        counter.inc();
        self.0 = Some((labels, counter));
    }
}

/// One cache's counters (they share their series with `Metrics::cache`).
#[derive(Clone, Debug)]
pub struct CacheEvents {
    /// Answered from the cache, or by waiting on another request's call.
    pub hit: Counter,
    /// A call to Wix, or a wait on one that failed.
    pub miss: Counter,
    /// An entry pushed out at capacity.
    pub eviction: Counter,
}

/// Labels of cache events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `identity`, `app_token` or `pass_through`.
    pub cache: &'static str,
    /// `hit`, `miss` or `eviction`.
    pub event: &'static str,
}

/// Labels of calls to Wix's OAuth endpoints.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WixCallLabels {
    /// `token_info`, `client_credentials` or `strip_bound_session`.
    pub call: &'static str,
    /// `ok`, `rejected` or `unavailable`.
    pub result: &'static str,
}

/// The rule a series counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The rule id.
    pub rule: String,
}

/// The outcome a series counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// A policy set version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    /// The version hash.
    pub version: String,
}

/// Every metric the gateway keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by deciding rule, decision and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Whole-request latency, seconds.
    pub request_duration: Histogram,
    /// Upstream exchange latency (until response headers), seconds.
    pub upstream_duration: Histogram,
    /// Identity, app-token and pass-through cache hits, misses, evictions.
    pub cache: Family<CacheLabels, Counter>,
    /// Calls to token-info and token, by outcome.
    pub wix_calls: Family<WixCallLabels, Counter>,
    /// Policy reloads by result (`success`, `failure`).
    pub reloads: Family<ResultLabel, Counter>,
    /// When the last successful policy load happened, Unix seconds.
    pub last_reload_success: Gauge<f64, AtomicU64>,
    /// The loaded policy set's version hash, as a label of a gauge set to 1.
    pub policy_version: Family<VersionLabel, Gauge>,
    /// Requests refused by a rate limit, by rule.
    pub rate_limited: Family<RuleLabel, Counter>,
    /// Client connections open now.
    pub open_connections: Gauge,
    /// Requests in flight now.
    pub in_flight: Gauge,
    /// Decision records lost because the log writer fell behind or failed.
    pub decision_log_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, registered under the `wix_elevator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wix_elevator");
        // 100 µs to ~26 s: the gateway's own work sits at the bottom, Wix's
        // answers in the middle, timeouts at the top.
        let buckets =
            || prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 19);
        let metrics = Self {
            requests: Family::default(),
            request_duration: Histogram::new(buckets()),
            upstream_duration: Histogram::new(buckets()),
            cache: Family::default(),
            wix_calls: Family::default(),
            reloads: Family::default(),
            last_reload_success: Gauge::default(),
            policy_version: Family::default(),
            rate_limited: Family::default(),
            open_connections: Gauge::default(),
            in_flight: Gauge::default(),
            decision_log_dropped: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests by deciding rule, decision and status class",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole-request latency",
            metrics.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Upstream exchange latency until response headers",
            metrics.upstream_duration.clone(),
        );
        registry.register(
            "cache_events",
            "Identity, app-token and pass-through cache hits, misses and evictions",
            metrics.cache.clone(),
        );
        registry.register(
            "wix_calls",
            "Calls to Wix token-info and token, by outcome",
            metrics.wix_calls.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy reloads by result",
            metrics.reloads.clone(),
        );
        registry.register(
            "policy_last_reload_success_timestamp_seconds",
            "When the policies were last loaded successfully",
            metrics.last_reload_success.clone(),
        );
        registry.register(
            "policy_version",
            "The loaded policy set's version (label), always 1",
            metrics.policy_version.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by rule",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open now",
            metrics.open_connections.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests in flight now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "decision_log_dropped",
            "Decision records lost because the log writer fell behind or failed",
            metrics.decision_log_dropped.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The hit, miss and eviction series of `cache`, resolved once by the
    /// cache that counts them: a family lookup hashes its labels under a
    /// lock, and two caches count on every request.
    pub fn cache_events(&self, cache: &'static str) -> CacheEvents {
        let series = |event| {
            self.cache
                .get_or_create(&CacheLabels { cache, event })
                .clone()
        };
        CacheEvents {
            hit: series("hit"),
            miss: series("miss"),
            eviction: series("eviction"),
        }
    }

    /// Counts one call to Wix's OAuth endpoints.
    pub fn wix_call(&self, call: &'static str, result: &'static str) {
        self.wix_calls
            .get_or_create(&WixCallLabels { call, result })
            .inc();
    }

    /// Records a successful policy load of `version` at `unix_seconds`.
    pub fn policies_loaded(&self, version: &str, unix_seconds: f64) {
        self.reloads
            .get_or_create(&ResultLabel { result: "success" })
            .inc();
        self.last_reload_success.set(unix_seconds);
        self.policy_version.clear();
        self.policy_version
            .get_or_create(&VersionLabel {
                version: version.to_owned(),
            })
            .set(1);
    }

    /// Records a failed policy reload.
    pub fn policy_reload_failed(&self) {
        self.reloads
            .get_or_create(&ResultLabel { result: "failure" })
            .inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// The status class label of `status`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_series_counts_in_the_family() {
        let metrics = Metrics::new();
        let labels = |rule: &str, status| RequestLabels {
            rule: rule.into(),
            decision: "allow",
            status,
        };
        let mut last = LastSeries::default();
        for (rule, status) in [
            ("r1", "2xx"),
            ("r1", "2xx"),
            ("r2", "2xx"),
            ("r1", "4xx"),
            ("r1", "2xx"),
        ] {
            last.count(&metrics.requests, labels(rule, status));
        }
        let counted = |rule, status| metrics.requests.get_or_create(&labels(rule, status)).get();
        assert_eq!(counted("r1", "2xx"), 3);
        assert_eq!(counted("r2", "2xx"), 1);
        assert_eq!(counted("r1", "4xx"), 1);
    }
}
