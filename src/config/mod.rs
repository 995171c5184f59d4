//! `proxy.yaml`: the raw file model, `${VAR}` expansion for secrets, and the
//! validated [`Config`] the rest of the crate uses. Raw types never leave this
//! module, so every value the gateway reads has been checked.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use http::{HeaderName, Uri};

use crate::{
    diagnostic::{Diagnostic, Diagnostics},
    secret::Secret,
};

/// Wix's API host, where token-info and token live too.
pub const DEFAULT_WIX_BASE_URL: &str = "https://www.wixapis.com";

/// The validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// The Wix side: base URL and the app's credentials.
    pub wix: WixConfig,
    /// A policy file, or a folder of them.
    pub policies: PathBuf,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Network timeouts.
    pub timeouts: Timeouts,
    /// Identity and credential caches.
    pub cache: CacheConfig,
    /// Browser origins allowed to call the gateway.
    pub cors: CorsConfig,
    /// Request headers forwarded upstream besides the built-in allowlist.
    pub forward_headers: Vec<HeaderName>,
    /// The operations listener (health, readiness, metrics); `None` when off.
    pub admin: Option<SocketAddr>,
    /// Where the one-line-per-request decision records go.
    pub decision_log: DecisionLogDestination,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Most requests in flight at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// TLS termination; plain HTTP when `None`.
    pub tls: Option<TlsConfig>,
    /// Per-rule rate limits.
    pub rate_limits: Vec<RateLimitConfig>,
}

/// Where decision records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionLogDestination {
    /// Standard output, one JSON object per line (the default).
    Stdout,
    /// Standard error.
    Stderr,
    /// Appended to a file.
    File(PathBuf),
    /// Not written.
    Off,
}

/// TLS termination with rustls.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// How often the files are checked for a new certificate (SIGHUP checks
    /// at once).
    pub reload_interval: Duration,
}

/// What a rate limit counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The verified caller (subject id).
    Caller,
    /// The caller's app instance (site).
    Instance,
    /// The client's IP address.
    Ip,
}

/// A rate limit on the requests some rules allow.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// The rule ids it applies to; `*` for every rule.
    pub rules: Vec<String>,
    /// What requests are counted by.
    pub key: RateLimitKey,
    /// Requests allowed per `per`, on average.
    pub requests: u32,
    /// The period of `requests`.
    pub per: Duration,
    /// Requests allowed at once after a quiet spell (default `requests`).
    pub burst: u32,
}

/// The Wix side.
#[derive(Debug, Clone)]
pub struct WixConfig {
    /// Scheme and authority of Wix's APIs, e.g. `https://www.wixapis.com`.
    pub base_url: Uri,
    /// Where token-info and token live; the same host as the APIs unless
    /// configured (a local stand-in for one of them, for instance).
    pub oauth_base_url: Uri,
    /// The app id (`client_id`); tokens must have been issued for it.
    pub app_id: String,
    /// The app secret; never printed.
    pub app_secret: Secret,
    /// How pass-through rules present the caller to Wix.
    pub pass_through: PassThroughMode,
}

/// How a pass-through rule presents the caller to Wix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassThroughMode {
    /// Exchange the caller's token with `strip_bound_session`, as `@wix/sdk`
    /// 1.14.1 and later do.
    StripBoundSession,
    /// Forward the caller's token as received, as `@wix/sdk` 1.12 did.
    Raw,
}

/// Network timeouts.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// TCP + TLS connect to Wix.
    pub connect: Duration,
    /// One upstream exchange, until the response headers arrive.
    pub upstream: Duration,
    /// One token-info or token call.
    pub identity: Duration,
    /// How long a client may take to send its request headers.
    pub header_read: Duration,
    /// How long a client may take to send a body the gateway reads.
    pub body_read: Duration,
    /// How long a connection may stay idle between requests.
    pub idle: Duration,
    /// How long a client may take for the TLS handshake.
    pub tls_handshake: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub drain: Duration,
}

/// Cache sizes and lifetimes.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most identities (token-info answers) kept.
    pub identities: u64,
    /// Longest an active identity is trusted without asking token-info
    /// again; also bounds how long a revoked token keeps working.
    pub identity_ttl: Duration,
    /// How long an inactive or invalid token is remembered as such.
    pub negative_ttl: Duration,
    /// App tokens are re-minted this long before they expire.
    pub app_token_refresh_margin: Duration,
    /// Most app tokens (one per app instance) kept.
    pub app_tokens: u64,
    /// Most pass-through (strip_bound_session) tokens kept.
    pub pass_through_tokens: u64,
}

/// Cross-origin access for the site's frontend.
#[derive(Debug, Clone, Default)]
pub struct CorsConfig {
    /// Exact origins (`https://www.example.com`) allowed to call; empty means
    /// no CORS headers are sent and no origin is checked.
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Duration,
}

impl Config {
    /// Reads and validates `path`. Every problem is reported, each located
    /// to its line and column.
    pub fn load(path: &Path) -> Result<Self, Diagnostics> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Diagnostics(vec![Diagnostic::error(
                path,
                0,
                0,
                format!("cannot read: {error}"),
            )])
        })?;
        let asked = std::cell::RefCell::new(Vec::new());
        let env = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            std::env::var(name).ok()
        };
        let parsed = Self::parse(path, &text, &env);
        let asked = asked.into_inner();
        // A misspelt override would otherwise do nothing, silently. Only
        // known once the overrides were read, i.e. the YAML parsed.
        let present = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
        let unknown: Vec<Diagnostic> = unknown_overrides(&asked, present)
            .into_iter()
            .map(|name| {
                Diagnostic::error(
                    path,
                    0,
                    0,
                    format!("environment variable {name} names no setting of this file"),
                )
            })
            .collect();
        match parsed {
            Ok(_) if !unknown.is_empty() => Err(Diagnostics(unknown)),
            Ok(config) => Ok(config),
            Err(Diagnostics(mut errors)) => {
                errors.extend(unknown);
                Err(Diagnostics(errors))
            }
        }
    }

    /// Parses `text` as if read from `path`; `env` resolves `${VAR}`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Diagnostics> {
        let mut raw: raw::RawConfig = serde_saphyr::from_str(text)
            .map_err(|error| Diagnostics(vec![Diagnostic::from_yaml(path, &error)]))?;
        raw.apply_env(env);
        validate::Validator {
            file: path,
            env,
            errors: Vec::new(),
        }
        .validate(raw)
    }
}

mod raw;
mod validate;

/// The `WIX_ELEVATOR_*` names in `present` that name no setting: neither
/// read by the overrides (`asked`) nor by the command line. Nothing is known
/// when the overrides were never read (the YAML did not parse).
fn unknown_overrides(asked: &[String], present: impl Iterator<Item = String>) -> Vec<String> {
    if asked.is_empty() {
        return Vec::new();
    }
    present
        .filter(|name| {
            name.starts_with(ENV_PREFIX)
                && !asked.contains(name)
                && !COMMAND_LINE_ENV.contains(&name.as_str())
        })
        .collect()
}

/// `WIX_ELEVATOR_*` variables the command line reads itself.
const COMMAND_LINE_ENV: [&str; 2] = ["WIX_ELEVATOR_CONFIG", "WIX_ELEVATOR_LOG_FORMAT"];

pub use raw::ENV_PREFIX;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "WIX_APP_ID" => Some("app-1".into()),
            "WIX_APP_SECRET" => Some("s3cret".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, Diagnostics> {
        Config::parse(Path::new("conf/proxy.yaml"), text, &env)
    }

    #[test]
    fn a_minimal_file_gets_defaults_and_expanded_secrets() {
        let config = parse(
            "wix:\n  app_id: ${WIX_APP_ID}\n  app_secret: ${WIX_APP_SECRET}\npolicies: policies/\n",
        )
        .unwrap();
        assert_eq!(config.wix.app_id, "app-1");
        assert_eq!(config.wix.app_secret.expose(), "s3cret");
        assert_eq!(config.wix.base_url, DEFAULT_WIX_BASE_URL);
        assert_eq!(config.policies, Path::new("conf/policies/"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let error =
            parse("wix:\n  app_id: a\n  app_secret: b\n  colour: red\npolicies: p\n").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("conf/proxy.yaml:4:3: error:"), "{text}");
        assert!(text.contains("colour"), "{text}");
    }

    #[test]
    fn every_invalid_value_is_reported() {
        let error = parse(
            "listen: nowhere\nwix:\n  app_id: ${NOPE}\n  app_secret: b\npolicies: p\ntimeouts:\n  upstream: soon\ncors:\n  allowed_origins: ['*']\n",
        )
        .unwrap_err();
        let lines: Vec<String> = error.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("conf/proxy.yaml:1:9: error: not an address"),
            "{lines:#?}"
        );
        assert!(lines[1].contains(":3:11: error: environment variable NOPE is not set"));
        assert!(lines
            .iter()
            .any(|l| l.contains(":7:13: error: not a duration")));
        assert!(lines
            .iter()
            .any(|l| l.contains(":9:21: error: an allowed origin")));
    }

    #[test]
    fn environment_variables_override_every_scalar() {
        let env = |name: &str| match name {
            "WIX_ELEVATOR_TIMEOUTS_UPSTREAM" => Some("7s".to_owned()),
            "WIX_ELEVATOR_LIMITS_BODY_BYTES" => Some("2048".to_owned()),
            "WIX_ELEVATOR_CORS_ALLOWED_ORIGINS" => {
                Some("https://a.example.com, https://b.example.com".to_owned())
            }
            "WIX_ELEVATOR_WIX_APP_SECRET" => Some("from-env".to_owned()),
            "WIX_ELEVATOR_ADMIN_LISTEN" => Some("off".to_owned()),
            "WIX_ELEVATOR_TIMEOUTS_IDLE" => Some("forever".to_owned()),
            _ => None,
        };
        let text = "wix:\n  app_id: a\n  app_secret: b\npolicies: p\n";
        let error = Config::parse(Path::new("proxy.yaml"), text, &env).unwrap_err();
        assert_eq!(error.0.len(), 1);
        assert!(
            error.0[0]
                .message
                .contains("WIX_ELEVATOR_* environment variable"),
            "{error}"
        );
        let env_ok = |name: &str| {
            (name != "WIX_ELEVATOR_TIMEOUTS_IDLE")
                .then(|| env(name))
                .flatten()
        };
        let config = Config::parse(Path::new("proxy.yaml"), text, &env_ok).unwrap();
        assert_eq!(config.timeouts.upstream, Duration::from_secs(7));
        assert_eq!(config.body_limit, 2048);
        assert_eq!(config.cors.allowed_origins.len(), 2);
        assert_eq!(config.wix.app_secret.expose(), "from-env");
        assert_eq!(config.admin, None);
    }

    #[test]
    fn rate_limits_and_tls_are_validated() {
        let config = parse(
            "wix:\n  app_id: a\n  app_secret: b\npolicies: p\ntls:\n  cert: c.pem\n  key: k.pem\nrate_limits:\n  - rules: [r1]\n    key: caller\n    requests: 10\n    per: 1m\n",
        )
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert, Path::new("conf/c.pem"));
        let limit = &config.rate_limits[0];
        assert_eq!((limit.requests, limit.burst), (10, 10));
        assert_eq!(limit.key, RateLimitKey::Caller);

        let error = parse(
            "wix:\n  app_id: a\n  app_secret: b\npolicies: p\nrate_limits:\n  - rules: [r1]\n    key: everyone\n    requests: 0\n    per: 1m\n",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(":7:10: error: expected one of: caller"),
            "{text}"
        );
        assert!(text.contains(":8:15: error: requests"), "{text}");
    }

    #[test]
    fn misspelt_overrides_and_zero_limits_are_errors() {
        let asked: Vec<String> = ["WIX_ELEVATOR_TIMEOUTS_UPSTREAM".to_owned()].into();
        let present = [
            "WIX_ELEVATOR_TIMEOUT_UPSTREAM",
            "WIX_ELEVATOR_TIMEOUTS_UPSTREAM",
            "WIX_ELEVATOR_LOG_FORMAT",
            "HOME",
        ]
        .map(str::to_owned);
        assert_eq!(
            unknown_overrides(&asked, present.clone().into_iter()),
            ["WIX_ELEVATOR_TIMEOUT_UPSTREAM"]
        );
        assert!(unknown_overrides(&[], present.into_iter()).is_empty());

        let error = parse(
            "wix:\n  app_id: a\n  app_secret: b\npolicies: p\nlimits:\n  max_in_flight: 0\ntimeouts:\n  idle: 0s\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(":6:18: error: must be at least 1"),
            "{error}"
        );
        assert!(error.contains(":8:9: error: must be above zero"), "{error}");
    }
}
