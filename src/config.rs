//! `proxy.yaml`: the raw file model, `${VAR}` expansion for secrets, and the
//! validated [`Config`] the rest of the crate uses. Raw types never leave this
//! module, so every value the gateway reads has been checked.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use http::{HeaderName, Uri};
use serde::Deserialize;
use serde_saphyr::Spanned;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses `text` as if read from `path`; `env` resolves `${VAR}`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Diagnostics> {
        let raw: RawConfig = serde_saphyr::from_str(text)
            .map_err(|error| Diagnostics(vec![Diagnostic::from_yaml(path, &error)]))?;
        Validator {
            file: path,
            env,
            errors: Vec::new(),
        }
        .validate(raw)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Option<Spanned<String>>,
    wix: RawWix,
    policies: Spanned<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    cors: RawCors,
    #[serde(default)]
    forward_headers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWix {
    #[serde(default)]
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    oauth_base_url: Option<Spanned<String>>,
    app_id: Spanned<String>,
    app_secret: Spanned<String>,
    #[serde(default)]
    pass_through: Option<PassThroughMode>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    body_bytes: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect: Option<Spanned<String>>,
    upstream: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    header_read: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    identities: Option<u64>,
    identity_ttl: Option<Spanned<String>>,
    negative_ttl: Option<Spanned<String>>,
    app_token_refresh_margin: Option<Spanned<String>>,
    app_tokens: Option<u64>,
    pass_through_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCors {
    #[serde(default)]
    allowed_origins: Vec<Spanned<String>>,
    max_age: Option<Spanned<String>>,
}

/// Turns a [`RawConfig`] into a [`Config`], collecting every error.
struct Validator<'a> {
    file: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn validate(mut self, raw: RawConfig) -> Result<Config, Diagnostics> {
        let listen = raw
            .listen
            .map_or(Some(SocketAddr::from(([127, 0, 0, 1], 8080))), |s| {
                self.expand(&s).and_then(|value| {
                    self.check(
                        &s,
                        value.parse().ok(),
                        "listen must be an address like 127.0.0.1:8080",
                    )
                })
            });
        let base_url = match &raw.wix.base_url {
            None => Some(Uri::from_static(DEFAULT_WIX_BASE_URL)),
            Some(s) => self.base_url(s),
        };
        let oauth_base_url = match &raw.wix.oauth_base_url {
            None => base_url.clone(),
            Some(s) => self.base_url(s),
        };
        let app_id = self.expand(&raw.wix.app_id).and_then(|id| {
            self.check(
                &raw.wix.app_id,
                Some(id).filter(|id| !id.is_empty()),
                "app_id is empty",
            )
        });
        let app_secret = self.expand(&raw.wix.app_secret).and_then(|s| {
            self.check(
                &raw.wix.app_secret,
                Some(s).filter(|s| !s.is_empty()),
                "app_secret is empty",
            )
        });
        let policies = self.expand(&raw.policies).map(|p| {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            dir.join(p)
        });
        let timeouts = Timeouts {
            connect: self.duration(&raw.timeouts.connect, Duration::from_secs(3)),
            upstream: self.duration(&raw.timeouts.upstream, Duration::from_secs(30)),
            identity: self.duration(&raw.timeouts.identity, Duration::from_secs(5)),
            header_read: self.duration(&raw.timeouts.header_read, Duration::from_secs(10)),
        };
        let cache = CacheConfig {
            identities: raw.cache.identities.unwrap_or(100_000),
            identity_ttl: self.duration(&raw.cache.identity_ttl, Duration::from_secs(300)),
            negative_ttl: self.duration(&raw.cache.negative_ttl, Duration::from_secs(10)),
            app_token_refresh_margin: self.duration(
                &raw.cache.app_token_refresh_margin,
                Duration::from_secs(300),
            ),
            app_tokens: raw.cache.app_tokens.unwrap_or(10_000),
            pass_through_tokens: raw.cache.pass_through_tokens.unwrap_or(100_000),
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
                self.check(name, parsed, "not a valid header name")
            })
            .collect();

        match (
            listen,
            base_url,
            oauth_base_url,
            app_id,
            app_secret,
            policies,
        ) {
            (
                Some(listen),
                Some(base_url),
                Some(oauth_base_url),
                Some(app_id),
                Some(app_secret),
                Some(policies),
            ) if self.errors.is_empty() => Ok(Config {
                listen,
                wix: WixConfig {
                    base_url,
                    oauth_base_url,
                    app_id,
                    app_secret: Secret::new(app_secret),
                    pass_through: raw
                        .wix
                        .pass_through
                        .unwrap_or(PassThroughMode::StripBoundSession),
                },
                policies,
                body_limit: raw.limits.body_bytes.unwrap_or(1024 * 1024),
                timeouts,
                cache,
                cors,
                forward_headers,
            }),
            _ => Err(Diagnostics(self.errors)),
        }
    }

    fn error_at<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
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

    fn duration(&mut self, value: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        let parsed = humantime::parse_duration(value.value.trim()).ok();
        self.check(value, parsed, "not a duration (like 500ms, 3s, 5m)")
            .unwrap_or(default)
    }
}

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
            lines[0].starts_with("conf/proxy.yaml:1:9: error: listen"),
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
}
