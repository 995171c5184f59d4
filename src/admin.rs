//! The admin listener, separate from the proxy and on loopback by default:
//! `/healthz` (the process answers), `/readyz` (policies loaded, serving, not
//! draining) and `/metrics` (OpenMetrics text, which Prometheus scrapes).

use std::net::SocketAddr;

use crate::server::IncomingBody;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::{
    body::{self, Body},
    gateway::Gateway,
    server::Handler,
};

/// The OpenMetrics text content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the admin endpoints of one gateway.
#[derive(Debug, Clone)]
pub struct Admin {
    gateway: Gateway,
}

impl Admin {
    /// The admin endpoints of `gateway`.
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }

    fn answer(&self, request: &Request<IncomingBody>) -> Response<Body> {
        if request.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" if self.gateway.is_ready() => text(StatusCode::OK, "ready\n"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.gateway.metrics().render());
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
                response
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Handler for Admin {
    type Session = ();

    async fn handle(
        &self,
        request: Request<IncomingBody>,
        _peer: SocketAddr,
        _session: &mut (),
    ) -> Response<Body> {
        self.answer(&request)
    }
}
