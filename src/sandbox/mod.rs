//! The sandbox: an in-process emulator of the Wix side, used by the demo and
//! by every end-to-end test, since nothing here can reach Wix.
//!
//! It serves, on one loopback listener:
//! - `POST /oauth2/token-info` and `POST /oauth2/token` (`client_credentials`
//!   and `strip_bound_session`), with the wire shapes of
//!   `shared/wix-protocol.md`;
//! - a control API under `/_sandbox/` to mint and revoke tokens, inject
//!   faults, sign legacy instances and read what happened;
//! - a catch-all "Wix API" that records every request and echoes it back with
//!   the credential it carried, so a test can assert exactly what the gateway
//!   sent upstream (or that nothing was sent).
//!
//! Deliberate differences from Wix are documented where they live; the main
//! one is that token-info keeps `active: true` for an expired token, so that
//! the gateway's own `exp` check is exercised.

mod api;
mod control;
mod oauth;
mod respond;
mod state;
#[cfg(test)]
mod tests;

use std::{fmt, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use crate::server::IncomingBody;
use http::{Request, Response, StatusCode};
use tokio::net::TcpListener;

pub use state::{Credential, Fault, MintRequest, MintedToken, RecordedRequest, SandboxStats, Via};

use crate::{
    body::Body,
    identity::signed_instance,
    secret::Secret,
    server::{Handler, Server, ServerOptions},
};
use respond::{error, read_body};
use state::Shared;

/// Wix documents both app and visitor tokens as living 4 hours.
const FOUR_HOURS: Duration = Duration::from_secs(4 * 60 * 60);

/// Who the sandbox's app is and how long its tokens live.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The app id: the only `client_id` `client_credentials` accepts, and the
    /// default `clientId` of minted tokens.
    pub app_id: String,
    /// The app secret: checked by both grants and used to sign instances.
    pub app_secret: Secret,
    /// `expires_in` of app tokens from `client_credentials` (default 4 h).
    pub app_token_ttl: Duration,
    /// Lifetime of minted caller tokens when the request names none
    /// (default 4 h).
    pub caller_token_ttl: Duration,
}

impl SandboxConfig {
    /// A config with Wix's default lifetimes.
    pub fn new(app_id: impl Into<String>, app_secret: Secret) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret,
            app_token_ttl: FOUR_HOURS,
            caller_token_ttl: FOUR_HOURS,
        }
    }
}

/// A running sandbox. The Rust methods do the same as the control API, for
/// tests that run in the same process.
pub struct Sandbox {
    shared: Arc<Shared>,
    server: Server,
}

impl fmt::Debug for Sandbox {
    // State holds live tokens, so only the address is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.server.local_addr())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts serving on `listener`. Must be called inside a tokio runtime.
    pub fn start(listener: TcpListener, config: SandboxConfig) -> Sandbox {
        let shared = Arc::new(Shared::new(config));
        let handler = SandboxHandler {
            shared: shared.clone(),
        };
        let server = Server::start(listener, handler, ServerOptions::default());
        tracing::info!(addr = %server.local_addr(), "sandbox listening");
        Sandbox { shared, server }
    }

    /// The address the sandbox listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http://IP:PORT`, the base URL to configure as the gateway's Wix.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// Mints a caller (or app) token, like `POST /_sandbox/tokens`.
    pub fn mint_token(&self, request: MintRequest) -> MintedToken {
        self.shared.mint(request)
    }

    /// Revokes `token`: token-info then says `active: false` and the API
    /// refuses it. Unknown tokens are ignored.
    pub fn revoke(&self, token: &str) {
        self.shared.revoke(token);
    }

    /// A legacy `instance` parameter carrying `payload`, signed with the app
    /// secret.
    pub fn signed_instance(&self, payload: serde_json::Value) -> String {
        signed_instance::sign(&payload, &self.shared.config.app_secret)
    }

    /// Every request that reached the catch-all API, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests (counters are kept).
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// The call counters.
    pub fn stats(&self) -> SandboxStats {
        self.shared.stats()
    }

    /// Makes token-info fail (`Some`) or work again (`None`).
    pub fn set_token_info_fault(&self, fault: Option<Fault>) {
        self.shared.set_token_info_fault(fault);
    }

    /// Every app token issued so far now gets 401 from the API, as if it had
    /// lapsed; tokens issued afterwards work. Tests the gateway's refresh.
    pub fn expire_app_tokens(&self) {
        self.shared.expire_app_tokens();
    }

    /// Stops the listener. Hanging token-info calls and delayed API answers
    /// end early so that shutdown is quick.
    pub async fn shutdown(self) {
        self.shared.begin_shutdown();
        self.server.shutdown().await;
    }
}

/// All values of header `name` (any case) in a recorded request.
pub fn header<'a>(request: &'a RecordedRequest, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect()
}

struct SandboxHandler {
    shared: Arc<Shared>,
}

impl Handler for SandboxHandler {
    type Session = ();

    fn handle(
        &self,
        request: Request<IncomingBody>,
        _peer: SocketAddr,
        _session: &mut (),
    ) -> impl Future<Output = Response<Body>> + Send {
        let shared = self.shared.clone();
        async move { route(&shared, request).await }
    }
}

async fn route(shared: &Shared, request: Request<IncomingBody>) -> Response<Body> {
    let path = request.uri().path();
    if path == "/_sandbox" || path.starts_with("/_sandbox/") {
        return control::handle(shared, request).await;
    }
    let oauth = match path {
        "/oauth2/token-info" => Some(true),
        "/oauth2/token" => Some(false),
        _ => None,
    };
    let Some(is_token_info) = oauth else {
        return api::handle(shared, request).await;
    };
    if request.method() != http::Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(problem) => return problem.response(),
    };
    if is_token_info {
        oauth::token_info(shared, &body).await
    } else {
        oauth::token(shared, &body)
    }
}
