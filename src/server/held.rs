//! Connections that stay with hyper for their whole life: TLS (whose
//! buffers live in rustls anyway) and HTTP/2 (many requests at once). An
//! idle timer closes them gracefully once no request has been in flight
//! for `idle_timeout`.

use std::{convert::Infallible, time::Duration};

use http::Request;
use hyper::body::Incoming;

use super::{
    activity::{Activity, Busy},
    Connection, GuardedBody, Handler, IncomingBody,
};

impl<H: Handler> Connection<H> {
    /// Serves HTTP on `io` until the peer leaves, the connection idles out,
    /// or shutdown drains it.
    pub(super) async fn serve_held<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Self {
            peer,
            handler,
            builders,
            options,
            stopped,
            _open,
            _slot,
        } = self;
        let activity = Activity::new();
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let handler = handler.clone();
            let request = request.map(IncomingBody::untracked);
            // Busy from the request's arrival until its response body is
            // sent or dropped, whichever way the exchange ends (a stream
            // reset drops this future, a client gone drops the body).
            let busy = Busy::new(tracked.clone());
            // Boxed per request: hyper keeps a slot for the in-flight future
            // for the connection's whole life, and the gateway's future is
            // several KiB; unboxed, every idle keep-alive connection would
            // hold that much (measured by bench/programs/scale.rs).
            Box::pin(async move {
                let response = handler.handle(request, peer).await;
                Ok::<_, Infallible>(response.map(|body| GuardedBody::boxed(body, busy)))
            })
        });
        let connection = builders.auto.serve_connection(io, service);
        tokio::pin!(connection);
        let tick = (options.idle_timeout / 4).max(Duration::from_millis(10));
        // A client that ignores a graceful close (an HTTP/2 peer that never
        // answers the GOAWAY's ping) is dropped after this long.
        let grace = options.idle_timeout.min(Duration::from_secs(5));
        let mut closing = None::<tokio::time::Instant>;
        if stopped.is_cancelled() {
            connection.as_mut().graceful_shutdown();
            closing = Some(tokio::time::Instant::now() + options.drain_timeout);
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                _ = stopped.cancelled(), if closing.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + options.drain_timeout);
                }
                _ = tokio::time::sleep(tick), if closing.is_none() => {
                    if activity.idle_for().is_some_and(|idle| idle >= options.idle_timeout) {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + grace);
                    }
                }
                _ = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                    tracing::debug!("connection did not close in time; dropping it");
                    return;
                }
            }
        }
    }
}
