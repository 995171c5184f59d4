//! The forward phase's transport. A TLS upstream (Wix itself) is spoken to
//! through one pooled hyper-util client over rustls: HTTP/2 where Wix offers
//! it by ALPN, HTTP/1.1 otherwise. A cleartext upstream (a sidecar, an
//! egress proxy, the sandbox) gets the gateway's own HTTP/1.1 transport
//! (`http1`), which does one fixed origin's keep-alive exchanges in the
//! request's own task.

mod head;
mod http1;
mod pool;
#[cfg(test)]
mod tests;

use std::{
    future::{poll_fn, Future},
    pin::pin,
    task::Poll,
    time::Duration,
};

use bytes::Bytes;
use http::{uri::Scheme, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use super::headers::UpstreamHeaders;
use crate::{
    body::{Body, BoxError},
    config::Config,
    error::GatewayError,
};

/// How long an idle upstream connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A request body on its way upstream.
pub enum Outgoing {
    /// In memory: what was inspected, or what a retry must send again.
    Bytes(Bytes),
    /// Streamed from the client as it arrives.
    Stream(Body),
}

/// The upstream's transport.
#[derive(Debug)]
enum Transport {
    Tls {
        client: Box<Client<HttpsConnector<HttpConnector>, Body>>,
        /// The base URL, to which the path is appended.
        base_url: String,
    },
    Cleartext(http1::Http1),
}

/// A pooled client for the upstream.
#[derive(Debug)]
pub struct Upstream {
    transport: Transport,
    timeout: Duration,
}

impl Upstream {
    /// A client with the connect and exchange timeouts of `config`.
    pub fn new(config: &Config) -> Self {
        let base = &config.wix.base_url;
        let cleartext = (base.scheme() == Some(&Scheme::HTTP))
            .then(|| base.authority())
            .flatten();
        let transport = match cleartext {
            Some(authority) => Transport::Cleartext(http1::Http1::new(
                authority.host(),
                authority.port_u16().unwrap_or(80),
                HeaderValue::from_str(authority.as_str())
                    .expect("a URI authority is a valid header value"),
                config.timeouts.connect,
                IDLE_TIMEOUT,
            )),
            None => Transport::Tls {
                client: Box::new(tls_client(config)),
                base_url: base.to_string().trim_end_matches('/').to_owned(),
            },
        };
        Self {
            transport,
            timeout: config.timeouts.upstream,
        }
    }

    /// Sends `method path` (the canonical path and query) with `headers`
    /// and `body`, and waits for the response head, up to the exchange
    /// timeout counted from `sent` (the caller's clock reading, so the
    /// clock is read once); the body then streams.
    pub async fn send(
        &self,
        method: &Method,
        path: &str,
        headers: &UpstreamHeaders<'_>,
        body: Outgoing,
        sent: std::time::Instant,
    ) -> Result<Response<Body>, GatewayError> {
        // Pinned where it is made, and raced against the deadline in
        // place: handed to `timeout_at`, the exchange's future (over a KiB)
        // would be copied into it on every request.
        let mut exchange = pin!(async {
            match &self.transport {
                Transport::Cleartext(http1) => http1
                    .send(method, path, headers.iter(), body)
                    .await
                    .map_err(BoxError::from),
                Transport::Tls { client, base_url } => {
                    let body = match body {
                        Outgoing::Bytes(bytes) => crate::body::full(bytes),
                        Outgoing::Stream(stream) => stream,
                    };
                    let mut request = Request::builder()
                        .method(method.clone())
                        .uri(format!("{base_url}{path}"))
                        .body(body)
                        .map_err(BoxError::from)?;
                    *request.headers_mut() = headers.to_map();
                    let response = client.request(request).await.map_err(BoxError::from)?;
                    Ok(response.map(|body| body.map_err(BoxError::from).boxed()))
                }
            }
        });
        // Unconstrained, as `timeout_at` polls it once the exchange has used
        // up the task's budget: a busy upload must not hide the deadline.
        let mut deadline = pin!(tokio::task::unconstrained(tokio::time::sleep_until(
            tokio::time::Instant::from_std(sent) + self.timeout
        )));
        let answered = poll_fn(|cx| {
            if let Poll::Ready(answered) = exchange.as_mut().poll(cx) {
                return Poll::Ready(Some(answered));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        });
        match answered.await {
            None => Err(GatewayError::GatewayTimeout),
            Some(Err(error)) => {
                tracing::warn!(error = %error, "upstream exchange failed");
                Err(GatewayError::BadGateway)
            }
            Some(Ok(response)) => Ok(response),
        }
    }
}

/// hyper-util's client over rustls, HTTP/2 or HTTP/1.1 by ALPN.
fn tls_client(config: &Config) -> Client<HttpsConnector<HttpConnector>, Body> {
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
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(tls)
}
