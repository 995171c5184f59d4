//! What the sandbox remembers: the tokens it issued, the requests that reached
//! its API, its counters and the faults a test injected. Also the public types
//! that describe them.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::SandboxConfig;

/// What a test asks for when it mints a caller token (Rust twin of
/// `POST /_sandbox/tokens`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintRequest {
    /// `VISITOR`, `MEMBER`, `USER` or `APP`. Any other value (e.g. `UNKNOWN`)
    /// is minted as is, so the gateway's refusal of odd subjects can be
    /// tested; such a token acts as a caller at the API.
    pub subject_type: String,
    /// The visitor, member, user or app id.
    pub subject_id: String,
    /// The app installation the token is bound to; `None` mints a token
    /// without `instanceId`, which the gateway must refuse.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The site; `None` leaves `siteId` out of token-info.
    #[serde(default)]
    pub site_id: Option<String>,
    /// The app the token was issued for. `None` means the sandbox's app id;
    /// an empty string leaves `clientId` out of token-info.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Lifetime in seconds; `None` means the configured caller token TTL.
    /// Zero or negative gives an `exp` already in the past.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

impl MintRequest {
    /// A caller token for `subject_id` of `subject_type`, bound to
    /// `instance_id` on `site_id`, for the sandbox's app, with the default
    /// lifetime: the token a site's frontend holds.
    pub fn caller(subject_type: &str, subject_id: &str, instance_id: &str, site_id: &str) -> Self {
        Self {
            subject_type: subject_type.into(),
            subject_id: subject_id.into(),
            instance_id: Some(instance_id.into()),
            site_id: Some(site_id.into()),
            ..Self::default()
        }
    }
}

/// A freshly minted token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedToken {
    /// The raw token, exactly what goes in `Authorization`.
    pub access_token: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// A failure injected into token-info, to test how the gateway copes with an
/// identity service that is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Answer with this HTTP status and a Wix-shaped error (`{"status": 503}`).
    Status(u16),
    /// Answer nothing for 60 seconds, then 503 (`"hang"`): long enough to trip
    /// any sane client timeout.
    Hang,
}

/// How many calls each part of the sandbox has served; tests use it to prove
/// that the gateway's caches actually save round trips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStats {
    /// Calls to `POST /oauth2/token-info`, including faulted and malformed ones.
    pub token_info_calls: u64,
    /// `client_credentials` grants asked for, including refused ones.
    pub client_credentials_calls: u64,
    /// `strip_bound_session` grants asked for, including refused ones.
    pub strip_bound_session_calls: u64,
    /// Requests that reached the catch-all Wix API, including refused ones.
    pub api_calls: u64,
}

/// One request that reached the catch-all Wix API, as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, as received (not decoded).
    pub path: String,
    /// The raw query string as received, without `?`.
    pub query: Option<String>,
    /// Who the `Authorization` header said the caller was.
    pub credential: Credential,
    /// Every header, lower-case names, values as lossy UTF-8. Headers come in
    /// hyper's order: first appearance of each name, with repeated values of
    /// one name next to each other.
    pub headers: Vec<(String, String)>,
    /// The body as lossy UTF-8 (empty when it could not be read).
    pub body: String,
}

/// The credential a request to the Wix API carried, as the sandbox judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Credential {
    /// No `Authorization` header.
    None,
    /// A token the sandbox did not issue, revoked, expired, or an app token
    /// retired by `expire_app_tokens`.
    Invalid,
    /// An app token from `client_credentials`: the elevated call.
    #[serde(rename_all = "camelCase")]
    App {
        /// The installation the app acts for.
        instance_id: String,
    },
    /// A visitor, member or user token: the non-elevated call.
    #[serde(rename_all = "camelCase")]
    Caller {
        /// Wix's `subjectType`.
        subject_type: String,
        /// Wix's `subjectId`.
        subject_id: String,
        /// The installation the token is bound to, if any.
        instance_id: Option<String>,
        /// Whether the caller's token came as minted or through
        /// `strip_bound_session`.
        via: Via,
    },
}

/// How a caller token reached the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The token as minted (what `@wix/sdk` 1.12 sent).
    Raw,
    /// A token returned by the `strip_bound_session` grant (what current
    /// `@wix/sdk` sends).
    StripBoundSession,
}

/// Where a token came from; decides how the API treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Minted,
    ClientCredentials,
    StripBoundSession,
}

/// Everything the sandbox knows about one token it issued.
#[derive(Clone)]
pub(super) struct TokenRecord {
    pub subject_type: String,
    pub subject_id: String,
    pub client_id: Option<String>,
    pub site_id: Option<String>,
    pub instance_id: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub revoked: bool,
    pub origin: Origin,
}

impl TokenRecord {
    /// Usable for a call right now: not revoked and not past `exp`.
    pub fn is_live(&self, now: i64) -> bool {
        !self.revoked && self.exp > now
    }

    /// The credential this token amounts to at the API, assuming it is live.
    pub fn credential(&self) -> Credential {
        if self.origin == Origin::ClientCredentials || self.subject_type == "APP" {
            // An app token bound to no instance could act for nothing.
            return match &self.instance_id {
                Some(id) => Credential::App {
                    instance_id: id.clone(),
                },
                None => Credential::Invalid,
            };
        }
        Credential::Caller {
            subject_type: self.subject_type.clone(),
            subject_id: self.subject_id.clone(),
            instance_id: self.instance_id.clone(),
            via: if self.origin == Origin::StripBoundSession {
                Via::StripBoundSession
            } else {
                Via::Raw
            },
        }
    }
}

/// The mutable part of the sandbox. Never held across an await.
#[derive(Default)]
pub(super) struct State {
    pub tokens: HashMap<String, TokenRecord>,
    pub requests: Vec<RecordedRequest>,
    pub stats: SandboxStats,
    pub token_info_fault: Option<Fault>,
}

/// What every request handler shares.
pub(super) struct Shared {
    pub config: SandboxConfig,
    state: Mutex<State>,
    /// Flips to true on shutdown so that hangs and delays end early instead
    /// of holding the drain.
    stopping: watch::Sender<bool>,
}

/// Current Unix time in seconds.
pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A random hex id for `x-wix-request-id` and error bodies.
pub(super) fn request_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

impl Shared {
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            stopping: watch::Sender::new(false),
        }
    }

    /// Locks the state. A panic in another handler must not take the whole
    /// sandbox down with it, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration`, or less if the sandbox shuts down meanwhile.
    pub async fn sleep(&self, duration: std::time::Duration) {
        let mut stopping = self.stopping.subscribe();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }

    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Issues a Wix-looking token for `record` and remembers it.
    pub fn issue(&self, record: TokenRecord) -> String {
        let header = json!({"alg": "HS256", "kid": "sandbox"});
        // The data claim is a JSON string, like Wix's; its token id and the
        // random signature make every token unique.
        let data = json!({
            "tokenId": hex::encode(rand::random::<[u8; 16]>()),
            "subjectType": record.subject_type,
            "subjectId": record.subject_id,
            "instanceId": record.instance_id,
            "siteId": record.site_id,
            "clientId": record.client_id,
        });
        let payload = json!({"data": data.to_string(), "iat": record.iat, "exp": record.exp});
        let token = format!(
            "OauthNG.JWS.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        );
        self.lock().tokens.insert(token.clone(), record);
        token
    }

    /// Mints a token as `POST /_sandbox/tokens` does.
    pub fn mint(&self, request: MintRequest) -> MintedToken {
        let now = now();
        let ttl = request.ttl_seconds.unwrap_or_else(|| {
            i64::try_from(self.config.caller_token_ttl.as_secs()).unwrap_or(i64::MAX)
        });
        // "Zero or negative" must already be expired, even within this second.
        let exp = if ttl > 0 {
            now.saturating_add(ttl)
        } else {
            now.saturating_add(ttl).saturating_sub(1)
        };
        let client_id = match request.client_id {
            None => Some(self.config.app_id.clone()),
            Some(id) if id.is_empty() => None,
            Some(id) => Some(id),
        };
        let record = TokenRecord {
            subject_type: request.subject_type,
            subject_id: request.subject_id,
            client_id,
            site_id: request.site_id,
            instance_id: request.instance_id,
            iat: now.min(exp.saturating_sub(1)),
            exp,
            revoked: false,
            origin: Origin::Minted,
        };
        let access_token = self.issue(record);
        tracing::debug!(
            token = %crate::secret::Fingerprint::of(access_token.as_bytes()),
            exp,
            "sandbox minted a token"
        );
        MintedToken { access_token, exp }
    }

    /// The record of `token`, if the sandbox issued it (revoked or not).
    pub fn lookup(&self, token: &str) -> Option<TokenRecord> {
        self.lock().tokens.get(token).cloned()
    }

    pub fn revoke(&self, token: &str) {
        if let Some(record) = self.lock().tokens.get_mut(token) {
            record.revoked = true;
        }
    }

    /// Moves every app token's `exp` into the past: the API then refuses
    /// them, as Wix does once an app token lapses, while the gateway still
    /// believes they are good.
    pub fn expire_app_tokens(&self) {
        let past = now() - 1;
        for record in self.lock().tokens.values_mut() {
            if record.origin == Origin::ClientCredentials || record.subject_type == "APP" {
                record.exp = record.exp.min(past);
            }
        }
    }

    pub fn stats(&self) -> SandboxStats {
        self.lock().stats
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn set_token_info_fault(&self, fault: Option<Fault>) {
        self.lock().token_info_fault = fault;
    }

    pub fn token_info_fault(&self) -> Option<Fault> {
        self.lock().token_info_fault
    }

    /// Counts one call with `count` under the lock.
    pub fn count(&self, count: impl FnOnce(&mut SandboxStats)) {
        count(&mut self.lock().stats);
    }

    /// Counts and records one API call in a single step, so a test never sees
    /// the counter ahead of the log.
    pub fn record_api_call(&self, request: RecordedRequest) {
        let mut state = self.lock();
        state.stats.api_calls += 1;
        state.requests.push(request);
    }
}
