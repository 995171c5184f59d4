//! Cleartext HTTP/1 connections, parked outside hyper between requests.
//!
//! hyper keeps a connection's read and write buffers (16 KiB or more) for as
//! long as the connection lives, idle or not. Here a connection gets hyper's
//! state only while it serves a request: when the socket turns readable a
//! fresh hyper connection serves one exchange, is shut down gracefully once
//! its response is written (the response already went out without
//! `Connection: close`), and hands the socket back. An idle keep-alive
//! connection then costs a socket and a small task, like nginx's.

use std::{
    convert::Infallible,
    future::poll_fn,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::{Bytes, BytesMut};
use http::{header, Request, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, sync::Notify};

use super::{
    incoming::{IncomingBody, Replay},
    Connection, GuardedBody, Handler,
};

/// What one exchange's request and response tell the connection.
#[derive(Default)]
pub(crate) struct Exchange {
    requests: AtomicUsize,
    bodies_read: AtomicUsize,
    client_closes: AtomicBool,
    /// Set once the response is done; from then on hyper reads nothing more
    /// (see [`Exchange::reads_paused`]).
    response_done: AtomicBool,
    responded: Notify,
}

impl Exchange {
    /// Counts `request` in and gives it a body that reports its end.
    fn admit(self: &Arc<Self>, request: Request<Incoming>) -> Request<IncomingBody> {
        self.requests.fetch_add(1, Ordering::AcqRel);
        if !keeps_alive(&request) {
            self.client_closes.store(true, Ordering::Release);
        }
        request.map(|body| IncomingBody::tracked(body, self.clone()))
    }

    pub(super) fn body_read(&self) {
        self.bodies_read.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether hyper must not be handed more bytes: once the response is
    /// done, the next request is for the next exchange. Without this, a
    /// client quick to send its next request could have hyper start it
    /// before the graceful shutdown lands, and that request would be
    /// answered with `Connection: close`.
    pub(super) fn reads_paused(&self) -> bool {
        self.response_done.load(Ordering::Acquire)
    }

    /// Whether the socket is fit for the next request: exactly one request
    /// was served (a second one, pipelined, may have been answered with
    /// `Connection: close` once the shutdown began), its body was read
    /// whole, and the client did not ask to close.
    fn reusable(&self) -> bool {
        self.requests.load(Ordering::Acquire) == 1
            && self.bodies_read.load(Ordering::Acquire) == 1
            && !self.client_closes.load(Ordering::Acquire)
    }
}

/// Notifies the exchange when the response is done, sent or dropped.
struct Responding(Arc<Exchange>);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.response_done.store(true, Ordering::Release);
        self.0.responded.notify_one();
    }
}

/// Whether the client allows the connection to stay open after `request`
/// (the same reading hyper applies to the response it writes).
fn keeps_alive<B>(request: &Request<B>) -> bool {
    let has = |token: &str| {
        request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    };
    match request.version() {
        Version::HTTP_11 => !has("close"),
        Version::HTTP_10 => has("keep-alive") && !has("close"),
        _ => false,
    }
}

impl<H: Handler> Connection<H> {
    /// Serves HTTP/1 on `stream` one exchange at a time, holding no buffer
    /// while the connection waits for its next request.
    pub(super) async fn serve_parked(mut self, mut stream: TcpStream) {
        let wait_limit = self
            .options
            .idle_timeout
            .min(self.options.header_read_timeout);
        let mut pending = Bytes::new();
        loop {
            if pending.is_empty() {
                tokio::select! {
                    biased;
                    _ = self.stopped.wait_for(|stopped| *stopped) => return,
                    readable = stream.readable() => if readable.is_err() { return },
                    _ = tokio::time::sleep(wait_limit) => return,
                }
            }
            // Boxed so that hyper's state is allocated only for the exchange,
            // not kept in the task while the connection is parked.
            match Box::pin(self.exchange(stream, pending)).await {
                Some((returned, rest)) => (stream, pending) = (returned, rest),
                None => return,
            }
        }
    }

    /// Serves one request with a fresh hyper connection. Returns the socket
    /// and any bytes read past the request when the connection may serve
    /// another one.
    async fn exchange(&mut self, stream: TcpStream, pending: Bytes) -> Option<(TcpStream, Bytes)> {
        let exchange = Arc::new(Exchange::default());
        let service = {
            let handler = self.handler.clone();
            let exchange = exchange.clone();
            let peer = self.peer;
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                let request = exchange.admit(request);
                let responding = Responding(exchange.clone());
                Box::pin(async move {
                    let response = handler.handle(request, peer).await;
                    Ok::<_, Infallible>(response.map(|body| GuardedBody::boxed(body, responding)))
                })
            })
        };
        let io = TokioIo::new(Replay::new(pending, stream, exchange.clone()));
        let mut connection = self.builders.http1.serve_connection(io, service);
        let mut shutting_down = false;
        let mut draining = None::<tokio::time::Instant>;
        let stopped = &mut self.stopped;
        let result = loop {
            tokio::select! {
                result = poll_fn(|cx| connection.poll_without_shutdown(cx)) => break result,
                _ = exchange.responded.notified(), if !shutting_down => {
                    std::pin::Pin::new(&mut connection).graceful_shutdown();
                    shutting_down = true;
                }
                _ = stopped.wait_for(|stopped| *stopped), if draining.is_none() => {
                    std::pin::Pin::new(&mut connection).graceful_shutdown();
                    shutting_down = true;
                    draining = Some(tokio::time::Instant::now() + self.options.drain_timeout);
                }
                _ = tokio::time::sleep_until(draining.unwrap_or_else(tokio::time::Instant::now)), if draining.is_some() => {
                    tracing::debug!("connection did not close in time; dropping it");
                    return None;
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "connection ended with an error");
            return None;
        }
        if draining.is_some() || !exchange.reusable() {
            return None;
        }
        let parts = connection.into_parts();
        let (unread, stream) = parts.io.into_inner().into_parts();
        // hyper read `read_buf` before whatever of the replayed bytes it did
        // not get to. An empty `read_buf` still owns hyper's whole buffer, so
        // it is dropped rather than kept while the connection is parked.
        let pending = match (parts.read_buf.is_empty(), unread.is_empty()) {
            (true, true) => Bytes::new(),
            (false, true) => parts.read_buf,
            (true, false) => unread,
            (false, false) => {
                let mut joined = BytesMut::from(&parts.read_buf[..]);
                joined.extend_from_slice(&unread);
                joined.freeze()
            }
        };
        Some((stream, pending))
    }
}
