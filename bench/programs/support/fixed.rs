//! The fixed-response upstream: the cheapest HTTP/1.1 keep-alive server hyper
//! makes, answering every request with the same small JSON body. It stands in
//! for Wix's API so that a benchmark measures the proxy, not the backend.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// The body every request gets (a Wix-shaped member, 120 bytes or so).
pub const BODY: &str = r#"{"member":{"id":"member-1","loginEmail":"bench@example.com","profile":{"nickname":"bench","slug":"bench"}}}"#;

/// Marks responses that really came from this server.
pub const MARK: &str = "x-bench-upstream";

/// Serves `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: back off, never spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as a real API would, before answering.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(MARK, HeaderValue::from_static("1"));
    Ok(response)
}
