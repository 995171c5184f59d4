//! The forward phase's transport: one pooled hyper-util client over rustls,
//! HTTP/2 where Wix offers it by ALPN, HTTP/1.1 otherwise (and to plain-HTTP
//! upstreams such as the sandbox).

use std::time::Duration;

use http::{header, uri::Scheme, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use crate::{
    body::{Body, BoxError},
    config::Config,
    error::GatewayError,
};

/// A pooled client for the upstream.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
    /// The `Host` of a cleartext upstream, which is always spoken to in
    /// HTTP/1.1: computed once rather than by the client on every request.
    /// Over TLS the protocol is known only per connection (HTTP/2 carries
    /// the authority itself), so there the client sets it.
    cleartext_host: Option<HeaderValue>,
}

impl Upstream {
    /// A client with the connect and exchange timeouts of `config`.
    pub fn new(config: &Config) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeouts.connect));
        let tls = HttpsConnectorBuilder::new()
            .with_native_roots()
            .unwrap_or_else(|error| {
                // Without trust roots every TLS upstream fails to connect:
                // closed, as it should be, and said once here.
                tracing::warn!(%error, "no native trust roots; TLS upstreams will fail");
                HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            })
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(tls);
        let base = &config.wix.base_url;
        let cleartext_host = (base.scheme() == Some(&Scheme::HTTP))
            .then(|| base.authority())
            .flatten()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
        Self {
            client,
            timeout: config.timeouts.upstream,
            cleartext_host,
        }
    }

    /// Sends `request` and waits for the response headers, up to the
    /// exchange timeout; the body then streams.
    pub async fn send(&self, mut request: Request<Body>) -> Result<Response<Body>, GatewayError> {
        if let Some(host) = &self.cleartext_host {
            request.headers_mut().insert(header::HOST, host.clone());
        }
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(GatewayError::GatewayTimeout),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "upstream exchange failed");
                Err(GatewayError::BadGateway)
            }
            Ok(Ok(response)) => Ok(response.map(|body| body.map_err(BoxError::from).boxed())),
        }
    }
}
