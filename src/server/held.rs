//! Connections that stay with hyper for their whole life: TLS (whose
//! buffers live in rustls anyway) and HTTP/2 (many requests at once). An
//! idle timer closes them gracefully once no request has been in flight
//! for `idle_timeout`.

use std::time::Duration;

use super::{activity::Activity, Connection, Handler};

impl<H: Handler> Connection<H> {
    /// Serves HTTP on `io` until the peer leaves, the connection idles out,
    /// or shutdown drains it.
    pub(super) async fn serve_held<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let service = self.service(&activity);
        let Self {
            builders,
            options,
            stopped,
            _open,
            _slot,
            ..
        } = self;
        let connection = builders.auto.serve_connection(io, service);
        tokio::pin!(connection);
        let tick = (options.idle_timeout / 4).max(Duration::from_millis(10));
        // A client that ignores a graceful close (an HTTP/2 peer that never
        // answers the GOAWAY's ping) is dropped after this long.
        let grace = options.close_grace();
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
