//! The credential phase: what the forwarded request carries as
//! `Authorization`.
//!
//! Elevated rules get the app's client-credentials token for the caller's own
//! instance, cached per instance and re-minted a margin before it expires.
//! Pass-through rules get the caller, exchanged with `strip_bound_session`
//! (cached by a hash of the caller's token) or, if configured, as received.
//! Each cache runs one mint per key at a time, so a burst of first requests
//! costs one call to Wix.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use moka::{future::Cache, Expiry};

use crate::{
    config::{Config, PassThroughMode},
    error::GatewayError,
    identity::AccessToken,
    metrics::Metrics,
    secret::Secret,
    wix::{IssuedToken, WixCallError, WixOAuth},
};

/// Keeps each minted token until `margin` before it expires; a token that
/// lives less than twice the margin is kept for half its life instead, so a
/// short-lived token is still reused rather than minted per request.
struct RefreshBeforeExpiry {
    margin: Duration,
}

impl<K> Expiry<K, IssuedToken> for RefreshBeforeExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        token: &IssuedToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let life = token.expires_in;
        Some(if life > self.margin * 2 {
            life - self.margin
        } else {
            life / 2
        })
    }
}

/// Mints and caches the tokens forwarded requests carry.
#[derive(Clone)]
pub struct Credentials {
    wix: WixOAuth,
    pass_through: PassThroughMode,
    app_tokens: Cache<String, IssuedToken>,
    caller_tokens: Cache<[u8; 32], IssuedToken>,
    metrics: Arc<Metrics>,
}

/// Metric names of the two caches.
const APP_TOKEN: &str = "app_token";
const PASS_THROUGH: &str = "pass_through";

fn token_cache<K>(
    capacity: u64,
    margin: Duration,
    metrics: &Arc<Metrics>,
    name: &'static str,
) -> Cache<K, IssuedToken>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    let evictions = metrics.clone();
    Cache::builder()
        .max_capacity(capacity)
        .expire_after(RefreshBeforeExpiry { margin })
        .eviction_listener(move |_key, _value, cause| {
            if cause.was_evicted() {
                evictions.cache_event(name, "eviction");
            }
        })
        .build()
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("pass_through", &self.pass_through)
            .field("app_tokens", &self.app_tokens.entry_count())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    fn count(&self, cache: &'static str, minted: &AtomicBool) {
        let event = if minted.load(Ordering::Relaxed) {
            "miss"
        } else {
            "hit"
        };
        self.metrics.cache_event(cache, event);
    }

    /// Credentials minted through `wix`, cached as `config` says.
    pub fn new(config: &Config, wix: WixOAuth, metrics: Arc<Metrics>) -> Self {
        let margin = config.cache.app_token_refresh_margin;
        Self {
            wix,
            pass_through: config.wix.pass_through,
            app_tokens: token_cache(config.cache.app_tokens, margin, &metrics, APP_TOKEN),
            caller_tokens: token_cache(
                config.cache.pass_through_tokens,
                margin,
                &metrics,
                PASS_THROUGH,
            ),
            metrics,
        }
    }

    /// The app's elevated token for `instance_id`. The instance always comes
    /// from the verified caller, never from the request.
    pub async fn app_token(&self, instance_id: &str) -> Result<Secret, GatewayError> {
        // Warm, a cache hit; the mint is boxed so that its future does not
        // make every request's future larger.
        if let Some(token) = self.app_tokens.get(instance_id).await {
            self.metrics.cache_event(APP_TOKEN, "hit");
            return Ok(token.access_token);
        }
        Box::pin(self.mint_app_token(instance_id)).await
    }

    /// Mints the app token of `instance_id`, one mint per instance at a time.
    async fn mint_app_token(&self, instance_id: &str) -> Result<Secret, GatewayError> {
        let minted = AtomicBool::new(false);
        let token = self
            .app_tokens
            .try_get_with_by_ref(instance_id, async {
                minted.store(true, Ordering::Relaxed);
                self.wix.client_credentials(instance_id).await
            })
            .await;
        self.count(APP_TOKEN, &minted);
        token.map(|token| token.access_token).map_err(|error| {
            tracing::warn!(%error, instance_id, "app token mint failed");
            GatewayError::CredentialUnavailable
        })
    }

    /// Forgets `stale` as the app token of `instance_id` after Wix refused
    /// it, unless a newer token has replaced it meanwhile.
    pub async fn drop_app_token(&self, instance_id: &str, stale: &Secret) {
        if let Some(current) = self.app_tokens.get(instance_id).await {
            if &current.access_token == stale {
                self.app_tokens.invalidate(instance_id).await;
            }
        }
    }

    /// The token that presents the caller (whose own token is
    /// `caller_token`) to Wix without elevation.
    pub async fn caller_token(
        &self,
        caller_token: &AccessToken<'_>,
    ) -> Result<Secret, GatewayError> {
        if self.pass_through == PassThroughMode::Raw {
            return Ok(Secret::new(caller_token.as_str()));
        }
        let key = *caller_token.key();
        if let Some(token) = self.caller_tokens.get(&key).await {
            self.metrics.cache_event(PASS_THROUGH, "hit");
            return Ok(token.access_token);
        }
        Box::pin(self.exchange(key, caller_token.as_str())).await
    }

    /// Exchanges `caller_token` with `strip_bound_session`, one exchange per
    /// token at a time.
    async fn exchange(&self, key: [u8; 32], caller_token: &str) -> Result<Secret, GatewayError> {
        let minted = AtomicBool::new(false);
        let token = self
            .caller_tokens
            .try_get_with(key, async {
                minted.store(true, Ordering::Relaxed);
                self.wix.strip_bound_session(caller_token).await
            })
            .await;
        self.count(PASS_THROUGH, &minted);
        token
            .map(|token| token.access_token)
            .map_err(|error| match *error {
                WixCallError::Rejected(_) => {
                    GatewayError::Unauthenticated("the access token was refused by Wix")
                }
                WixCallError::Unavailable(_) => {
                    tracing::warn!(%error, "strip_bound_session failed");
                    GatewayError::CredentialUnavailable
                }
            })
    }
}
