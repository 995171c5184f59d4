//! The two Wix OAuth endpoints the gateway calls, with their exact wire
//! format (see `wix-protocol.md`): `POST /oauth2/token-info` and
//! `POST /oauth2/token` with its two grants.

use std::{sync::Arc, time::Duration};

use serde::{de::DeserializeOwned, Deserialize};
use serde_json::json;

use crate::{config::Config, metrics::Metrics, secret::Secret};

/// token-info's answer. Field names are Wix's.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// False for expired or revoked tokens.
    pub active: bool,
    /// `APP`, `USER`, `MEMBER`, `VISITOR` or `UNKNOWN`.
    #[serde(default)]
    pub subject_type: Option<String>,
    /// Visitor, member, user or app id.
    #[serde(default)]
    pub subject_id: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub exp: Option<i64>,
    /// The app the token was issued for.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The site.
    #[serde(default)]
    pub site_id: Option<String>,
    /// The app's installation on that site.
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// A token minted by `/oauth2/token`.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token, sent as the whole `Authorization` value.
    pub access_token: Secret,
    /// Lifetime from now.
    pub expires_in: Duration,
}

#[derive(Deserialize)]
struct RawIssuedToken {
    access_token: String,
    expires_in: u64,
}

/// Why a call to Wix's OAuth endpoints failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WixCallError {
    /// Wix answered that the request or credential is not acceptable
    /// (400, 401, 403, 404).
    #[error("rejected with status {0}")]
    Rejected(u16),
    /// Wix could not be asked or did not answer sensibly: timeouts, connection
    /// errors, 5xx, unreadable answers. Never a reason to allow anything.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Client for Wix's OAuth endpoints.
#[derive(Clone)]
pub struct WixOAuth {
    http: reqwest::Client,
    token_info_url: String,
    token_url: String,
    app_id: String,
    app_secret: Secret,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for WixOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixOAuth")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl WixOAuth {
    /// A client for the Wix side described by `wix`, each call bounded by
    /// `timeout`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let wix = &config.wix;
        let base = wix.oauth_base_url.to_string();
        let base = base.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .timeout(config.timeouts.identity)
            .no_proxy()
            .build()
            .expect("the TLS backend initializes");
        Self {
            http,
            token_info_url: format!("{base}/oauth2/token-info"),
            token_url: format!("{base}/oauth2/token"),
            app_id: wix.app_id.clone(),
            app_secret: wix.app_secret.clone(),
            metrics,
        }
    }

    /// Asks token-info who `token` speaks for. No app credentials are sent.
    pub async fn token_info(&self, token: &str) -> Result<TokenInfo, WixCallError> {
        self.post(
            "token_info",
            &self.token_info_url,
            json!({ "token": token }),
        )
        .await
    }

    /// Mints the app's elevated token for one installation of the app.
    pub async fn client_credentials(&self, instance_id: &str) -> Result<IssuedToken, WixCallError> {
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self.app_secret.expose(),
            "instance_id": instance_id,
        });
        self.post::<RawIssuedToken>("client_credentials", &self.token_url, body)
            .await
            .map(Into::into)
    }

    /// Exchanges a caller's token for one that acts as the same caller
    /// without the browser-bound session, as `@wix/sdk` ≥ 1.14.1 does. Wix
    /// takes no `client_id` here.
    pub async fn strip_bound_session(&self, token: &str) -> Result<IssuedToken, WixCallError> {
        let body = json!({
            "grant_type": "strip_bound_session",
            "client_secret": self.app_secret.expose(),
            "access_token": token,
        });
        self.post::<RawIssuedToken>("strip_bound_session", &self.token_url, body)
            .await
            .map(Into::into)
    }

    /// Posts `body` to `url`, counting the outcome as `call`.
    async fn post<T: DeserializeOwned>(
        &self,
        call: &'static str,
        url: &str,
        body: serde_json::Value,
    ) -> Result<T, WixCallError> {
        let result = self.exchange(url, body).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(WixCallError::Rejected(_)) => "rejected",
            Err(WixCallError::Unavailable(_)) => "unavailable",
        };
        self.metrics.wix_call(call, outcome);
        result
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        url: &str,
        body: serde_json::Value,
    ) -> Result<T, WixCallError> {
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            // reqwest's error text names the URL only, never the body.
            .map_err(|error| WixCallError::Unavailable(error.without_url().to_string()))?;
        let status = response.status();
        // Only these say the credential itself is bad; 408, 429 and the
        // like say Wix is unable now, which must not be cached as a refusal.
        if matches!(status.as_u16(), 400 | 401 | 403 | 404) {
            return Err(WixCallError::Rejected(status.as_u16()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(WixCallError::Unavailable(format!("status {status}")));
        }
        response.json().await.map_err(|error| {
            WixCallError::Unavailable(format!("unreadable answer: {}", error.without_url()))
        })
    }
}

impl From<RawIssuedToken> for IssuedToken {
    fn from(raw: RawIssuedToken) -> Self {
        Self {
            access_token: Secret::new(raw.access_token),
            expires_in: Duration::from_secs(raw.expires_in),
        }
    }
}
