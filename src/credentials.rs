//! The credential phase: what the forwarded request carries as
//! `Authorization`.
//!
//! Elevated rules get the app's client-credentials token for the caller's own
//! instance, cached per instance and re-minted a margin before it expires.
//! Pass-through rules get the caller, exchanged with `strip_bound_session`
//! (cached by a hash of the caller's token) or, if configured, as received.
//! Each cache runs one mint per key at a time, so a burst of first requests
//! costs one call to Wix.

use std::{sync::Arc, time::Duration};

use http::HeaderValue;

use crate::{
    config::{Config, PassThroughMode},
    error::GatewayError,
    expiring_cache::ExpiringCache,
    identity::AccessToken,
    metrics::Metrics,
    wix::{IssuedToken, WixCallError, WixOAuth},
};

/// `token` as a sensitive `Authorization` value.
fn authorization(token: &str) -> Result<HeaderValue, WixCallError> {
    let mut value = HeaderValue::from_str(token).map_err(|_| {
        WixCallError::Unavailable("Wix issued a token that is not a valid header value".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Metric names of the two caches.
const APP_TOKEN: &str = "app_token";
const PASS_THROUGH: &str = "pass_through";

/// Mints and caches the tokens forwarded requests carry.
pub struct Credentials {
    wix: WixOAuth,
    pass_through: PassThroughMode,
    /// App tokens by instance id.
    app_tokens: ExpiringCache<String, HeaderValue, WixCallError>,
    /// Pass-through tokens by the hash of the caller's token.
    caller_tokens: ExpiringCache<[u8; 32], HeaderValue, WixCallError>,
    /// How long before its expiry a token is minted anew.
    margin: Duration,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("pass_through", &self.pass_through)
            .field("app_tokens", &self.app_tokens.len())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials minted through `wix`, cached as `config` says.
    pub fn new(config: &Config, wix: WixOAuth, metrics: Arc<Metrics>) -> Self {
        Self {
            wix,
            pass_through: config.wix.pass_through,
            app_tokens: ExpiringCache::new(config.cache.app_tokens, APP_TOKEN, &metrics),
            caller_tokens: ExpiringCache::new(
                config.cache.pass_through_tokens,
                PASS_THROUGH,
                &metrics,
            ),
            margin: config.cache.app_token_refresh_margin,
        }
    }

    /// How long a minted token is used: until `margin` before it expires; a
    /// token that lives less than twice the margin is used for half its life
    /// instead, so a short-lived token is still reused rather than minted per
    /// request.
    ///
    /// Kept as the `Authorization` value it will be sent as, checked once
    /// here rather than on every request, and marked sensitive (its `Debug`
    /// shows nothing).
    fn keep(&self, token: IssuedToken) -> Result<(HeaderValue, Duration), WixCallError> {
        let life = token.expires_in;
        let keep = if life > self.margin * 2 {
            life - self.margin
        } else {
            life / 2
        };
        Ok((authorization(token.access_token.expose())?, keep))
    }

    /// The app's elevated token for `instance_id`, one mint per instance at
    /// a time. The instance always comes from the verified caller, never
    /// from the request.
    pub async fn app_token(&self, instance_id: &str) -> Result<HeaderValue, GatewayError> {
        let mint = || async {
            let token = self.wix.client_credentials(instance_id).await?;
            self.keep(token)
        };
        self.app_tokens
            .get_or_fill(instance_id, mint)
            .await
            .map_err(|error| {
                tracing::warn!(%error, instance_id, "app token mint failed");
                GatewayError::CredentialUnavailable
            })
    }

    /// Forgets `stale` as the app token of `instance_id` after Wix refused
    /// it, unless a newer token has replaced it meanwhile.
    pub fn drop_app_token(&self, instance_id: &str, stale: &HeaderValue) {
        self.app_tokens
            .remove_if(instance_id, |current| current == stale);
    }

    /// The token that presents the caller (whose own token is
    /// `caller_token`) to Wix without elevation.
    pub async fn caller_token(
        &self,
        caller_token: &AccessToken<'_>,
    ) -> Result<HeaderValue, GatewayError> {
        if self.pass_through == PassThroughMode::Raw {
            return authorization(caller_token.as_str()).map_err(|_| {
                GatewayError::Unauthenticated("the Authorization header is not a token")
            });
        }
        // One `strip_bound_session` exchange per token at a time.
        let exchange = || async {
            let token = self.wix.strip_bound_session(caller_token.as_str()).await?;
            self.keep(token)
        };
        self.caller_tokens
            .get_or_fill(caller_token.key(), exchange)
            .await
            .map_err(|error| match error {
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
