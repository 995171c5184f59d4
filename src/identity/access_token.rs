//! Access-token identities: token-info behind a single-flight cache.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::HeaderValue;
use moka::{future::Cache, Expiry};
use sha2::{Digest, Sha256};

use crate::{
    caller::{Caller, CallerType, IdentitySource},
    config::Config,
    error::GatewayError,
    metrics::Metrics,
    wix::{TokenInfo, WixCallError, WixOAuth},
};

/// What token-info said about one token, as cached: only what the checks
/// need, not token-info's whole answer, since up to `cache.identities` of
/// these are kept (bench/programs/scale.rs measures them).
#[derive(Clone)]
enum Lookup {
    /// An active token: when it expires (checked on every use), and the
    /// caller it speaks for, or why it speaks for no one we admit.
    Active {
        exp: Option<i64>,
        caller: Result<Arc<Caller>, &'static str>,
    },
    /// token-info said the token is not active.
    Inactive,
    /// token-info refused the token outright (4xx).
    Rejected,
}

/// Cache lifetimes: an active token no longer than it lives nor than the
/// configured maximum; an inactive or rejected one briefly.
struct LookupExpiry {
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<[u8; 32], Lookup> for LookupExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Lookup,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value {
            Lookup::Active { exp, .. } => {
                let left = exp.unwrap_or(0).saturating_sub(unix_now());
                self.max_ttl.min(Duration::from_secs(left.max(0) as u64))
            }
            Lookup::Inactive | Lookup::Rejected => self.negative_ttl,
        })
    }
}

/// Resolves access tokens to callers.
#[derive(Clone)]
pub struct IdentityService {
    wix: WixOAuth,
    app_id: String,
    cache: Cache<[u8; 32], Lookup>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// A service asking `wix`'s token-info, cached as `config` says.
    pub fn new(config: &Config, wix: WixOAuth, metrics: Arc<Metrics>) -> Self {
        let evictions = metrics.clone();
        let cache = Cache::builder()
            .eviction_listener(move |_key, _value, cause| {
                if cause.was_evicted() {
                    evictions.cache_event("identity", "eviction");
                }
            })
            .max_capacity(config.cache.identities)
            .expire_after(LookupExpiry {
                max_ttl: config.cache.identity_ttl,
                negative_ttl: config.cache.negative_ttl,
            })
            .build();
        Self {
            wix,
            app_id: config.wix.app_id.clone(),
            cache,
            metrics,
        }
    }

    /// The verified caller behind `token`.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, GatewayError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Warm, this is a cache hit. The miss (a token-info call, single
        // flight per token) is boxed: inline, its future would make every
        // request's future several KiB larger.
        let lookup = match self.cache.get(&key).await {
            Some(lookup) => {
                self.metrics.cache_event("identity", "hit");
                lookup
            }
            None => Box::pin(self.look_up(key, token)).await?,
        };
        match lookup {
            Lookup::Active { exp, caller } => {
                // Expiry first, on every use: a cached answer never outlives
                // the token.
                if exp.is_none_or(|exp| exp <= unix_now()) {
                    return Err(GatewayError::Unauthenticated(
                        "the access token has expired",
                    ));
                }
                caller
                    .map(|caller| Caller::clone(&caller))
                    .map_err(GatewayError::Unauthenticated)
            }
            Lookup::Inactive => Err(GatewayError::Unauthenticated(
                "the access token is not active",
            )),
            Lookup::Rejected => Err(GatewayError::Unauthenticated(
                "the access token is not valid",
            )),
        }
    }

    /// Asks token-info about `token`, one call per key at a time.
    async fn look_up(&self, key: [u8; 32], token: &str) -> Result<Lookup, GatewayError> {
        let asked = AtomicBool::new(false);
        let lookup = self
            .cache
            .try_get_with(key, async {
                asked.store(true, Ordering::Relaxed);
                match self.wix.token_info(token).await {
                    Ok(info) if info.active => Ok(Lookup::Active {
                        exp: info.exp,
                        caller: self.caller(info).map(Arc::new),
                    }),
                    Ok(_) => Ok(Lookup::Inactive),
                    Err(WixCallError::Rejected(status)) => {
                        tracing::debug!(status, "token-info rejected the token");
                        Ok(Lookup::Rejected)
                    }
                    Err(error @ WixCallError::Unavailable(_)) => Err(error),
                }
            })
            .await;
        // A waiter that got another request's answer asked nothing: a hit.
        let event = if asked.load(Ordering::Relaxed) {
            "miss"
        } else {
            "hit"
        };
        self.metrics.cache_event("identity", event);
        lookup.map_err(|error| {
            tracing::warn!(%error, "token-info call failed");
            GatewayError::IdentityUnavailable
        })
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
        Ok(Caller {
            subject_type,
            subject_id,
            instance_id,
            site_id: info.site_id,
            source: IdentitySource::AccessToken,
        })
    }
}

/// The token in an `Authorization` value: the raw value, as `fetchWithAuth`
/// sends it, or leniently after a `Bearer ` prefix.
pub fn token_from_header(value: &HeaderValue) -> Result<&str, GatewayError> {
    let invalid = GatewayError::Unauthenticated("the Authorization header is not a token");
    let value = value.to_str().map_err(|_| invalid)?.trim();
    let token = match value.split_at_checked(6) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("bearer")
                && (rest.is_empty() || rest.starts_with(' ')) =>
        {
            rest.trim_start()
        }
        _ => value,
    };
    // Bytes, not chars: `to_str` already refused everything but visible
    // ASCII and tab, and a byte scan of a 1 KiB token is several times
    // cheaper than decoding it char by char (callgrind: 4k instructions).
    if token.is_empty() || token.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(GatewayError::Unauthenticated(
            "the Authorization header is not a token",
        ));
    }
    Ok(token)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_taken_raw_or_after_bearer() {
        let raw = HeaderValue::from_static("OauthNG.JWS.a.b.c");
        assert_eq!(token_from_header(&raw).unwrap(), "OauthNG.JWS.a.b.c");
        let bearer = HeaderValue::from_static("bearer  OauthNG.JWS.a.b.c");
        assert_eq!(token_from_header(&bearer).unwrap(), "OauthNG.JWS.a.b.c");
        for bad in ["", "Bearer ", "a b"] {
            assert!(
                token_from_header(&HeaderValue::from_static(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
