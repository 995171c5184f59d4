//! The file as written: serde types only, every struct refusing unknown
//! keys, every scalar kept as text with its line and column so that the
//! validator can say exactly where a bad value is.

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// A scalar as written.
pub(super) type Scalar = Option<Spanned<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) listen: Scalar,
    pub(super) wix: RawWix,
    pub(super) policies: Spanned<String>,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) decision_log: RawDecisionLog,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    #[serde(default)]
    pub(super) cache: RawCache,
    #[serde(default)]
    pub(super) cors: RawCors,
    #[serde(default)]
    pub(super) tls: Option<RawTls>,
    #[serde(default)]
    pub(super) rate_limits: Vec<Spanned<RawRateLimit>>,
    #[serde(default)]
    pub(super) forward_headers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWix {
    #[serde(default)]
    pub(super) base_url: Scalar,
    #[serde(default)]
    pub(super) oauth_base_url: Scalar,
    pub(super) app_id: Spanned<String>,
    pub(super) app_secret: Spanned<String>,
    #[serde(default)]
    pub(super) pass_through: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default)]
    pub(super) listen: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDecisionLog {
    #[serde(default)]
    pub(super) destination: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default)]
    pub(super) body_bytes: Scalar,
    #[serde(default)]
    pub(super) max_connections: Scalar,
    #[serde(default)]
    pub(super) max_in_flight: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    #[serde(default)]
    pub(super) connect: Scalar,
    #[serde(default)]
    pub(super) upstream: Scalar,
    #[serde(default)]
    pub(super) identity: Scalar,
    #[serde(default)]
    pub(super) header_read: Scalar,
    #[serde(default)]
    pub(super) body_read: Scalar,
    #[serde(default)]
    pub(super) idle: Scalar,
    #[serde(default)]
    pub(super) tls_handshake: Scalar,
    #[serde(default)]
    pub(super) drain: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    #[serde(default)]
    pub(super) identities: Scalar,
    #[serde(default)]
    pub(super) identity_ttl: Scalar,
    #[serde(default)]
    pub(super) negative_ttl: Scalar,
    #[serde(default)]
    pub(super) app_token_refresh_margin: Scalar,
    #[serde(default)]
    pub(super) app_tokens: Scalar,
    #[serde(default)]
    pub(super) pass_through_tokens: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    #[serde(default)]
    pub(super) allowed_origins: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) max_age: Scalar,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) cert: Scalar,
    #[serde(default)]
    pub(super) key: Scalar,
    #[serde(default)]
    pub(super) reload_interval: Scalar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) rules: Vec<Spanned<String>>,
    pub(super) key: Spanned<String>,
    pub(super) requests: Spanned<String>,
    pub(super) per: Spanned<String>,
    #[serde(default)]
    pub(super) burst: Scalar,
}

/// The prefix of environment variables that override `proxy.yaml`:
/// `WIX_ELEVATOR_TIMEOUTS_UPSTREAM=5s` sets `timeouts.upstream`.
pub const ENV_PREFIX: &str = "WIX_ELEVATOR_";

impl RawConfig {
    /// Applies `WIX_ELEVATOR_<SECTION>_<KEY>` overrides to every scalar key
    /// (and, comma-separated, to the two lists of strings). An overridden
    /// value has no line in the file; its errors name the variable instead.
    pub(super) fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let get = |key: &str| env(&format!("{ENV_PREFIX}{key}")).map(from_env);
        let set = |slot: &mut Scalar, key: &str| {
            if let Some(value) = get(key) {
                *slot = Some(value);
            }
        };
        set(&mut self.listen, "LISTEN");
        if let Some(value) = get("POLICIES") {
            self.policies = value;
        }
        let wix = &mut self.wix;
        set(&mut wix.base_url, "WIX_BASE_URL");
        set(&mut wix.oauth_base_url, "WIX_OAUTH_BASE_URL");
        set(&mut wix.pass_through, "WIX_PASS_THROUGH");
        if let Some(value) = get("WIX_APP_ID") {
            wix.app_id = value;
        }
        if let Some(value) = get("WIX_APP_SECRET") {
            wix.app_secret = value;
        }
        set(&mut self.admin.listen, "ADMIN_LISTEN");
        set(
            &mut self.decision_log.destination,
            "DECISION_LOG_DESTINATION",
        );
        let limits = &mut self.limits;
        set(&mut limits.body_bytes, "LIMITS_BODY_BYTES");
        set(&mut limits.max_connections, "LIMITS_MAX_CONNECTIONS");
        set(&mut limits.max_in_flight, "LIMITS_MAX_IN_FLIGHT");
        let timeouts = &mut self.timeouts;
        set(&mut timeouts.connect, "TIMEOUTS_CONNECT");
        set(&mut timeouts.upstream, "TIMEOUTS_UPSTREAM");
        set(&mut timeouts.identity, "TIMEOUTS_IDENTITY");
        set(&mut timeouts.header_read, "TIMEOUTS_HEADER_READ");
        set(&mut timeouts.body_read, "TIMEOUTS_BODY_READ");
        set(&mut timeouts.idle, "TIMEOUTS_IDLE");
        set(&mut timeouts.tls_handshake, "TIMEOUTS_TLS_HANDSHAKE");
        set(&mut timeouts.drain, "TIMEOUTS_DRAIN");
        let cache = &mut self.cache;
        set(&mut cache.identities, "CACHE_IDENTITIES");
        set(&mut cache.identity_ttl, "CACHE_IDENTITY_TTL");
        set(&mut cache.negative_ttl, "CACHE_NEGATIVE_TTL");
        set(
            &mut cache.app_token_refresh_margin,
            "CACHE_APP_TOKEN_REFRESH_MARGIN",
        );
        set(&mut cache.app_tokens, "CACHE_APP_TOKENS");
        set(&mut cache.pass_through_tokens, "CACHE_PASS_THROUGH_TOKENS");
        set(&mut self.cors.max_age, "CORS_MAX_AGE");
        if let Some(list) = get("CORS_ALLOWED_ORIGINS") {
            self.cors.allowed_origins = split_list(list);
        }
        if let Some(list) = get("FORWARD_HEADERS") {
            self.forward_headers = split_list(list);
        }
        let (cert, key, interval) = (get("TLS_CERT"), get("TLS_KEY"), get("TLS_RELOAD_INTERVAL"));
        if cert.is_some() || key.is_some() || interval.is_some() {
            let tls = self.tls.get_or_insert_with(RawTls::default);
            for (slot, value) in [
                (&mut tls.cert, cert),
                (&mut tls.key, key),
                (&mut tls.reload_interval, interval),
            ] {
                if value.is_some() {
                    *slot = value;
                }
            }
        }
    }
}

/// A value from the environment: no place in the file.
fn from_env(value: String) -> Spanned<String> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

fn split_list(list: Spanned<String>) -> Vec<Spanned<String>> {
    list.value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| from_env(item.to_owned()))
        .collect()
}
