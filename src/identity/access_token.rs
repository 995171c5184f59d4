//! Access-token identities: token-info behind a single-flight cache.

use std::{sync::Arc, time::Duration};

use constant_time_eq::constant_time_eq;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::{
    caller::{Caller, CallerType, IdentitySource},
    clock::unix_seconds,
    config::Config,
    error::GatewayError,
    expiring_cache::ExpiringCache,
    metrics::Metrics,
    wix::{TokenInfo, WixCallError, WixOAuth},
};

use super::interner::Interner;

/// What token-info said about one token, as cached: only what the checks
/// need, not token-info's whole answer, since up to `cache.identities` of
/// these are kept (bench/programs/scale.rs measures them). Kept no longer
/// than the token lives nor than `cache.identity_ttl`; a refusal for
/// `cache.negative_ttl`. A failed call is never kept.
#[derive(Clone)]
enum Answer {
    /// An active token: when it expires (checked on every use), and the
    /// caller it speaks for, or why it speaks for no one we admit.
    Active {
        exp: Option<i64>,
        caller: Result<Caller, &'static str>,
    },
    /// token-info said the token is not active.
    Inactive,
    /// token-info refused the token outright (4xx).
    Rejected,
}

/// Resolves access tokens to callers.
#[derive(Clone)]
pub struct IdentityService {
    wix: WixOAuth,
    app_id: String,
    /// token-info's answers by the token's SHA-256; `()` is a failed call.
    cache: Arc<ExpiringCache<[u8; 32], Answer, ()>>,
    max_ttl: Duration,
    negative_ttl: Duration,
    /// Instance and site ids, one copy each however many callers share them.
    ids: Arc<Interner>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// A service asking `wix`'s token-info, cached as `config` says.
    pub fn new(config: &Config, wix: WixOAuth, metrics: Arc<Metrics>) -> Self {
        Self {
            wix,
            app_id: config.wix.app_id.clone(),
            cache: Arc::new(ExpiringCache::new(
                config.cache.identities,
                "identity",
                &metrics,
            )),
            max_ttl: config.cache.identity_ttl,
            negative_ttl: config.cache.negative_ttl,
            ids: Arc::new(Interner::default()),
        }
    }

    /// The verified caller behind `token`. token-info is asked once per
    /// token at a time: requests for the same token meanwhile wait for that
    /// call's answer.
    pub async fn authenticate(&self, token: &AccessToken<'_>) -> Result<Caller, GatewayError> {
        let answer = self
            .cache
            .get_or_fill(&token.key, || self.token_info(token.text))
            .await
            .map_err(|()| GatewayError::IdentityUnavailable)?;
        match answer {
            Answer::Active { exp, caller } => {
                // Expiry first, on every use: a cached answer never outlives
                // the token.
                if exp.is_none_or(|exp| exp <= unix_seconds()) {
                    return Err(GatewayError::Unauthenticated(
                        "the access token has expired",
                    ));
                }
                caller.map_err(GatewayError::Unauthenticated)
            }
            Answer::Inactive => Err(GatewayError::Unauthenticated(
                "the access token is not active",
            )),
            Answer::Rejected => Err(GatewayError::Unauthenticated(
                "the access token is not valid",
            )),
        }
    }

    /// token-info's answer about `token`, and how long it may be kept; `()`
    /// when token-info could not answer (never kept).
    async fn token_info(&self, token: &str) -> Result<(Answer, Duration), ()> {
        match self.wix.token_info(token).await {
            Ok(info) if info.active => {
                let left = info.exp.unwrap_or(0).saturating_sub(unix_seconds());
                let ttl = self.max_ttl.min(Duration::from_secs(left.max(0) as u64));
                let answer = Answer::Active {
                    exp: info.exp,
                    caller: self.caller(info),
                };
                Ok((answer, ttl))
            }
            Ok(_) => Ok((Answer::Inactive, self.negative_ttl)),
            Err(WixCallError::Rejected(status)) => {
                tracing::debug!(status, "token-info rejected the token");
                Ok((Answer::Rejected, self.negative_ttl))
            }
            Err(error @ WixCallError::Unavailable(_)) => {
                tracing::warn!(%error, "token-info call failed");
                Err(())
            }
        }
    }

    /// Applies every check `@wix/sdk` leaves out, but expiry (checked on
    /// every use), to an active token's answer.
    fn caller(&self, info: TokenInfo) -> Result<Caller, &'static str> {
        if info.client_id.as_deref() != Some(self.app_id.as_str()) {
            return Err("the access token was not issued for this app");
        }
        let instance_id = info
            .instance_id
            .filter(|id| !id.is_empty())
            .ok_or("the access token is not bound to an app instance")?;
        let subject_type = info
            .subject_type
            .as_deref()
            .and_then(CallerType::parse)
            .ok_or("the access token is not a visitor, member or user token")?;
        let subject_id = info
            .subject_id
            .filter(|id| !id.is_empty())
            .ok_or("the access token has no subject")?;
        Ok(Caller::new(
            subject_type,
            subject_id.into(),
            self.ids.intern(&instance_id),
            info.site_id.as_deref().map(|site| self.ids.intern(site)),
            IdentitySource::AccessToken,
        ))
    }
}

/// The last access token a connection presented, and its SHA-256. A
/// browser sends the same token on every request of a keep-alive
/// connection; remembered, a repeat costs a comparison instead of hashing
/// the token again. Only the hash is remembered, never token-info's answer:
/// every request still asks the shared cache, which alone decides how long
/// an answer lasts. The server keeps one per connection only while requests
/// keep coming (it holds their heads meanwhile too).
#[derive(Default)]
pub struct LastToken(Option<Remembered>);

impl LastToken {
    /// `text` as an access token with its key: the remembered key when
    /// `text` is the remembered token, otherwise hashed now and remembered
    /// for the connection's next request.
    pub fn token<'t>(&mut self, text: &'t str) -> AccessToken<'t> {
        if let Some(remembered) = &self.0 {
            if constant_time_eq(remembered.text.as_bytes(), text.as_bytes()) {
                return AccessToken {
                    text,
                    key: remembered.key,
                };
            }
        }
        let token = AccessToken::new(text);
        self.0 = Some(Remembered {
            text: text.into(),
            key: token.key,
        });
        token
    }
}

struct Remembered {
    /// The token, exactly as presented.
    text: Box<str>,
    key: [u8; 32],
}

/// Never prints the token.
impl std::fmt::Debug for LastToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LastToken(..)")
    }
}

/// A caller's access token on its way through a request, with its SHA-256:
/// the key every cache keeps in place of the token, computed once however
/// many caches look the token up.
#[derive(Clone, Copy)]
pub struct AccessToken<'a> {
    text: &'a str,
    key: [u8; 32],
}

impl<'a> AccessToken<'a> {
    /// `text`, hashed.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            key: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// The token itself, for the calls that must present it.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The token's SHA-256: what caches key on.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

impl std::fmt::Debug for AccessToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// The token in an `Authorization` value: the raw value, as `fetchWithAuth`
/// sends it, or leniently after a `Bearer ` prefix.
pub fn token_from_header(value: &HeaderValue) -> Result<AccessToken<'_>, GatewayError> {
    token_text(value).map(AccessToken::new)
}

/// [`token_from_header`]'s token, not yet hashed.
pub fn token_text(value: &HeaderValue) -> Result<&str, GatewayError> {
    let invalid = GatewayError::Unauthenticated("the Authorization header is not a token");
    let value = value.as_bytes().trim_ascii();
    let token = match value.split_at_checked(6) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case(b"bearer")
                && (rest.is_empty() || rest.starts_with(b" ")) =>
        {
            rest.trim_ascii_start()
        }
        _ => value,
    };
    // A token is visible ASCII, nothing else. One pass without an early
    // exit, which the compiler turns into a vector loop: a 1 KiB token is
    // checked 32 bytes at a time.
    let visible = token
        .iter()
        .fold(true, |visible, &b| visible & (b'!'..=b'~').contains(&b));
    match std::str::from_utf8(token) {
        Ok(token) if visible && !token.is_empty() => Ok(token),
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_key_is_the_remembered_token_s_only() {
        let mut last = LastToken::default();
        for text in [
            "OauthNG.JWS.a",
            "OauthNG.JWS.a",
            "OauthNG.JWS.b",
            "OauthNG.JWS.",
            "OauthNG.JWS.b",
        ] {
            let token = last.token(text);
            assert_eq!(token.as_str(), text);
            assert_eq!(token.key(), AccessToken::new(text).key(), "{text}");
        }
        assert_eq!(format!("{last:?}"), "LastToken(..)");
    }

    #[test]
    fn tokens_are_taken_raw_or_after_bearer() {
        let raw = HeaderValue::from_static("OauthNG.JWS.a.b.c");
        assert_eq!(
            token_from_header(&raw).unwrap().as_str(),
            "OauthNG.JWS.a.b.c"
        );
        let bearer = HeaderValue::from_static("bearer  OauthNG.JWS.a.b.c");
        assert_eq!(
            token_from_header(&bearer).unwrap().as_str(),
            "OauthNG.JWS.a.b.c"
        );
        for bad in ["", "Bearer ", "a b", "a\tb"] {
            assert!(
                token_from_header(&HeaderValue::from_static(bad)).is_err(),
                "{bad}"
            );
        }
        // Bytes beyond ASCII are valid in a header value, never in a token.
        let obs_text = HeaderValue::from_bytes(b"OauthNG.JWS.\xe9.b").unwrap();
        assert!(token_from_header(&obs_text).is_err());
    }
}
