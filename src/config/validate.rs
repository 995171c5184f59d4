//! Turns the raw file into a validated [`Config`], collecting every error.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use http::{HeaderName, Uri};
use serde_saphyr::Spanned;

use super::{
    raw::{RawConfig, RawRateLimit, RawTls, Scalar, ENV_PREFIX},
    CacheConfig, Config, CorsConfig, DecisionLogDestination, PassThroughMode, RateLimitConfig,
    RateLimitKey, Timeouts, TlsConfig, WixConfig, DEFAULT_WIX_BASE_URL,
};
use crate::{
    diagnostic::{Diagnostic, Diagnostics},
    secret::Secret,
};

/// Turns a [`RawConfig`] into a [`Config`], collecting every error.
/// Headers `forward_headers` may not name: credentials, framing, and
/// connection-scoped headers, which the gateway sets or strips itself.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

pub(super) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    pub(super) fn validate(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        let listen = self.address(&raw.listen, "127.0.0.1:8080");
        let admin = match &raw.admin.listen {
            Some(value) if value.value.trim() == "off" => Some(None),
            _ => self.address(&raw.admin.listen, "127.0.0.1:9901").map(Some),
        };
        let base_url = match &raw.wix.base_url {
            None => Some(Uri::from_static(DEFAULT_WIX_BASE_URL)),
            Some(s) => self.base_url(s),
        };
        let oauth_base_url = match &raw.wix.oauth_base_url {
            None => base_url.clone(),
            Some(s) => self.base_url(s),
        };
        let app_id = self.non_empty(&raw.wix.app_id, "app_id is empty");
        let app_secret = self.non_empty(&raw.wix.app_secret, "app_secret is empty");
        let pass_through = self.choice(
            &raw.wix.pass_through,
            &[
                ("strip_bound_session", PassThroughMode::StripBoundSession),
                ("raw", PassThroughMode::Raw),
            ],
            PassThroughMode::StripBoundSession,
        );
        let policies = self.expand(&raw.policies).map(|p| self.relative(&p));
        let decision_log = match &raw.decision_log.destination {
            None => DecisionLogDestination::Stdout,
            Some(value) => match value.value.trim() {
                "stdout" => DecisionLogDestination::Stdout,
                "stderr" => DecisionLogDestination::Stderr,
                "off" => DecisionLogDestination::Off,
                "" => {
                    self.error_at(value, "a destination is stdout, stderr, off or a file path");
                    DecisionLogDestination::Off
                }
                path => DecisionLogDestination::File(self.relative(path)),
            },
        };
        let timeouts = Timeouts {
            connect: self.positive_duration(&raw.timeouts.connect, Duration::from_secs(3)),
            upstream: self.positive_duration(&raw.timeouts.upstream, Duration::from_secs(30)),
            identity: self.positive_duration(&raw.timeouts.identity, Duration::from_secs(5)),
            header_read: self.positive_duration(&raw.timeouts.header_read, Duration::from_secs(10)),
            body_read: self.positive_duration(&raw.timeouts.body_read, Duration::from_secs(10)),
            idle: self.positive_duration(&raw.timeouts.idle, Duration::from_secs(60)),
            tls_handshake: self
                .positive_duration(&raw.timeouts.tls_handshake, Duration::from_secs(10)),
            drain: self.duration(&raw.timeouts.drain, Duration::from_secs(30)),
        };
        let cache = CacheConfig {
            identities: self.number(&raw.cache.identities, 100_000),
            identity_ttl: self.duration(&raw.cache.identity_ttl, Duration::from_secs(300)),
            negative_ttl: self.duration(&raw.cache.negative_ttl, Duration::from_secs(10)),
            app_token_refresh_margin: self.duration(
                &raw.cache.app_token_refresh_margin,
                Duration::from_secs(300),
            ),
            app_tokens: self.number(&raw.cache.app_tokens, 10_000),
            pass_through_tokens: self.number(&raw.cache.pass_through_tokens, 100_000),
        };
        let allowed_origins = raw
            .cors
            .allowed_origins
            .iter()
            .filter_map(|origin| {
                let valid = origin.value.parse::<Uri>().ok().filter(|uri| {
                    uri.scheme().is_some()
                        && uri.authority().is_some()
                        && uri.path() == "/"
                        && !origin.value.ends_with('/')
                });
                self.check(
                    origin,
                    valid.map(|_| origin.value.clone()),
                    "an allowed origin is a scheme and host, like https://www.example.com (no path, no wildcard)",
                )
            })
            .collect();
        let cors = CorsConfig {
            allowed_origins,
            max_age: self.duration(&raw.cors.max_age, Duration::from_secs(600)),
        };
        let forward_headers = raw
            .forward_headers
            .iter()
            .filter_map(|name| {
                let parsed = HeaderName::try_from(name.value.to_ascii_lowercase()).ok();
                let parsed = self.check(name, parsed, "not a valid header name")?;
                let reserved = NEVER_FORWARDED.contains(&parsed.as_str());
                self.check(
                    name,
                    (!reserved).then_some(parsed),
                    "this header is set by the gateway or is connection-scoped; it cannot be forwarded",
                )
            })
            .collect();
        let tls = raw.tls.as_ref().and_then(|tls| self.tls(tls));
        let rate_limits = raw
            .rate_limits
            .iter()
            .filter_map(|limit| self.rate_limit(limit))
            .collect();

        let config = match (
            listen,
            admin,
            base_url,
            oauth_base_url,
            app_id,
            app_secret,
            policies,
        ) {
            (
                Some(listen),
                Some(admin),
                Some(base_url),
                Some(oauth_base_url),
                Some(app_id),
                Some(app_secret),
                Some(policies),
            ) => Config {
                listen,
                wix: WixConfig {
                    base_url,
                    oauth_base_url,
                    app_id,
                    app_secret: Secret::new(app_secret),
                    pass_through,
                },
                policies,
                body_limit: self.positive_number(&raw.limits.body_bytes, 1024 * 1024),
                max_connections: self.positive_number(&raw.limits.max_connections, 10_000),
                max_in_flight: self.positive_number(&raw.limits.max_in_flight, 1_000),
                timeouts,
                cache,
                cors,
                forward_headers,
                admin,
                decision_log,
                tls,
                rate_limits,
            },
            _ => return Err(Diagnostics(self.errors)),
        };
        if self.errors.is_empty() {
            Ok(config)
        } else {
            Err(Diagnostics(self.errors))
        }
    }

    fn address(&mut self, value: &Scalar, default: &str) -> Option<SocketAddr> {
        let Some(value) = value else {
            return default.parse().ok();
        };
        let expanded = self.expand(value)?;
        self.check(
            value,
            expanded.trim().parse().ok(),
            "not an address like 127.0.0.1:8080",
        )
    }

    fn non_empty(&mut self, value: &Spanned<String>, message: &str) -> Option<String> {
        let expanded = self.expand(value)?;
        self.check(value, Some(expanded).filter(|v| !v.is_empty()), message)
    }

    fn relative(&self, path: &str) -> PathBuf {
        self.file.parent().unwrap_or(Path::new(".")).join(path)
    }

    fn choice<T: Copy>(&mut self, value: &Scalar, options: &[(&str, T)], default: T) -> T {
        let Some(value) = value else { return default };
        let found = options
            .iter()
            .find(|(name, _)| *name == value.value.trim())
            .map(|(_, option)| *option);
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        self.check(
            value,
            found,
            &format!("expected one of: {}", names.join(", ")),
        )
        .unwrap_or(default)
    }

    fn number<T: std::str::FromStr>(&mut self, value: &Scalar, default: T) -> T {
        let Some(value) = value else { return default };
        let parsed = value.value.trim().replace('_', "").parse().ok();
        self.check(value, parsed, "not a whole number")
            .unwrap_or(default)
    }

    fn tls(&mut self, raw: &RawTls) -> Option<TlsConfig> {
        let mut path = |value: &Scalar, name: &str| match value {
            Some(value) => self.expand(value).map(|p| self.relative(&p)),
            None => {
                self.errors.push(Diagnostic::error(
                    self.file,
                    0,
                    0,
                    format!("tls needs both cert and key; {name} is missing"),
                ));
                None
            }
        };
        let cert = path(&raw.cert, "cert");
        let key = path(&raw.key, "key");
        let reload_interval = self.positive_duration(&raw.reload_interval, Duration::from_secs(60));
        Some(TlsConfig {
            cert: cert?,
            key: key?,
            reload_interval,
        })
    }

    fn rate_limit(&mut self, raw: &Spanned<RawRateLimit>) -> Option<RateLimitConfig> {
        let limit = &raw.value;
        if limit.rules.is_empty() {
            self.error_at(raw, "a rate limit names at least one rule id, or *");
        }
        let key = match limit.key.value.trim() {
            "caller" => Some(RateLimitKey::Caller),
            "instance" => Some(RateLimitKey::Instance),
            "ip" => Some(RateLimitKey::Ip),
            _ => None,
        };
        let key = self.check(&limit.key, key, "expected one of: caller, instance, ip");
        let requests = limit
            .requests
            .value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0);
        let requests = self.check(
            &limit.requests,
            requests,
            "requests is a whole number above 0",
        );
        let per = humantime::parse_duration(limit.per.value.trim())
            .ok()
            .filter(|per| !per.is_zero());
        let per = self.check(
            &limit.per,
            per,
            "per is a duration above zero, like 1s or 1m",
        );
        let burst = match &limit.burst {
            None => requests,
            Some(value) => {
                let burst = value.value.trim().parse::<u32>().ok().filter(|n| *n > 0);
                self.check(value, burst, "burst is a whole number above 0")
            }
        };
        Some(RateLimitConfig {
            rules: limit.rules.iter().map(|rule| rule.value.clone()).collect(),
            key: key?,
            requests: requests?,
            per: per?,
            burst: burst?,
        })
    }

    fn error_at<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let mut message = message.into();
        if at.referenced.line() == 0 {
            message.push_str(&format!(" (set by a {ENV_PREFIX}* environment variable)"));
        }
        self.errors.push(Diagnostic::error(
            self.file,
            at.referenced.line(),
            at.referenced.column(),
            message,
        ));
    }

    fn check<T, U>(&mut self, at: &Spanned<T>, value: Option<U>, message: &str) -> Option<U> {
        if value.is_none() {
            self.error_at(at, message);
        }
        value
    }

    /// Replaces each `${NAME}` with the environment variable `NAME`; an unset
    /// variable is an error, never an empty string.
    fn expand(&mut self, value: &Spanned<String>) -> Option<String> {
        let mut out = String::with_capacity(value.value.len());
        let mut rest = value.value.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start + 2..].find('}') else {
                self.error_at(value, "unterminated ${ in value");
                return None;
            };
            let name = &rest[start + 2..start + 2 + len];
            match (self.env)(name) {
                Some(found) => out.push_str(&found),
                None => {
                    self.error_at(value, format!("environment variable {name} is not set"));
                    return None;
                }
            }
            rest = &rest[start + 3 + len..];
        }
        out.push_str(rest);
        Some(out)
    }

    fn base_url(&mut self, value: &Spanned<String>) -> Option<Uri> {
        let expanded = self.expand(value)?;
        let uri = expanded.parse::<Uri>().ok().filter(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some()
                && matches!(uri.path(), "" | "/")
                && uri.query().is_none()
        });
        self.check(
            value,
            uri,
            "a base URL is a scheme and host only, like https://www.wixapis.com",
        )
    }

    fn duration(&mut self, value: &Scalar, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        let parsed = humantime::parse_duration(value.value.trim()).ok();
        self.check(value, parsed, "not a duration (like 500ms, 3s, 5m)")
            .unwrap_or(default)
    }

    /// A duration that must be above zero: a zero timeout or interval would
    /// close every connection at once or spin.
    fn positive_duration(&mut self, value: &Scalar, default: Duration) -> Duration {
        let duration = self.duration(value, default);
        if duration.is_zero() {
            if let Some(value) = value {
                self.error_at(value, "must be above zero");
            }
            return default;
        }
        duration
    }

    /// A count that must be at least 1.
    fn positive_number(&mut self, value: &Scalar, default: usize) -> usize {
        let number = self.number(value, default);
        if number == 0 {
            if let Some(value) = value {
                self.error_at(value, "must be at least 1");
            }
            return default;
        }
        number
    }
}
