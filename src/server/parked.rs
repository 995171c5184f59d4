//! Cleartext connections: HTTP/1 parked outside hyper while idle.
//!
//! hyper keeps a connection's read and write buffers (16 KiB or more) for as
//! long as the connection lives, idle or not. Here a connection has hyper's
//! state only while it is in use: when the socket turns readable a fresh
//! hyper connection serves requests as they come, and once none has been in
//! flight for [`PARK_AFTER`] it is shut down gracefully (an idle hyper
//! connection closes at once, having announced nothing) and hands the
//! socket back. An idle keep-alive connection then costs a socket and a
//! small task, as in nginx, while a busy one never pays for the hand-over.

use std::{
    future::{poll_fn, Future},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    task::Poll,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{header, Request, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::header_list;

use super::{
    activity::Activity,
    incoming::{IncomingBody, Replay},
    Connection, Handler,
};

/// How long a connection with no request in flight keeps hyper's state
/// before it is parked. Short: connections under load never go this long
/// without a request, and every session held past its last request keeps
/// hyper's buffers (measured by bench/programs/scale.rs, where 10,000
/// clients connect one after the other: 500 ms cost 20 MiB more).
const PARK_AFTER: Duration = Duration::from_millis(50);

/// What the requests of one session tell the connection.
#[derive(Default)]
pub(super) struct Session {
    requests: AtomicUsize,
    bodies_read: AtomicUsize,
    client_closes: AtomicBool,
    /// Set when hyper tries to write, cleared when a flush succeeds. hyper
    /// flushes the socket only once its own buffer is empty, so while this
    /// is clear hyper holds nothing it has yet to send.
    unflushed: AtomicBool,
}

impl Session {
    /// Counts `request` in and gives it a body that reports its end.
    fn admit(self: &Arc<Self>, request: Request<Incoming>) -> Request<IncomingBody> {
        self.requests.fetch_add(1, Ordering::AcqRel);
        if !keeps_alive(&request) {
            self.client_closes.store(true, Ordering::Release);
        }
        request.map(|body| IncomingBody::tracked(body, self.clone()))
    }

    fn served_any(&self) -> bool {
        self.requests.load(Ordering::Acquire) > 0
    }

    /// Whether hyper may still hold bytes it has not written out.
    fn unflushed(&self) -> bool {
        self.unflushed.load(Ordering::Acquire)
    }

    pub(super) fn writing(&self) {
        self.unflushed.store(true, Ordering::Release);
    }

    pub(super) fn flushed(&self) {
        self.unflushed.store(false, Ordering::Release);
    }

    pub(super) fn body_read(&self) {
        self.bodies_read.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the socket is fit for another request once hyper let go of
    /// it: every request body was read whole (unread bytes must never be
    /// parsed as a request) and the client did not ask to close.
    fn reusable(&self) -> bool {
        let requests = self.requests.load(Ordering::Acquire);
        requests > 0
            && self.bodies_read.load(Ordering::Acquire) == requests
            && !self.client_closes.load(Ordering::Acquire)
    }
}

/// What an HTTP/2 client sends first when it speaks HTTP/2 in cleartext.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the bytes waiting on `stream` open HTTP/2's preface, or are too
/// few to tell (no HTTP/1 method starts with "PRI"): hyper's detection then
/// reads on until it knows.
async fn speaks_h2(stream: &TcpStream) -> bool {
    let mut first = [0; H2_PREFACE.len()];
    match stream.peek(&mut first).await {
        Ok(n) if n > 0 => H2_PREFACE.starts_with(&first[..n]),
        _ => false,
    }
}

/// Whether the client allows the connection to stay open after `request`
/// (the same reading hyper applies to the response it writes).
fn keeps_alive<B>(request: &Request<B>) -> bool {
    let has = |token| header_list::lists(request.headers(), header::CONNECTION, token);
    match request.version() {
        Version::HTTP_11 => !has("close"),
        Version::HTTP_10 => has("keep-alive") && !has("close"),
        _ => false,
    }
}

impl<H: Handler> Connection<H> {
    /// Serves a cleartext connection: HTTP/2 with prior knowledge, or
    /// HTTP/1 holding no buffer while the connection waits for a request.
    pub(super) async fn serve_cleartext(self, stream: TcpStream) {
        let wait_limit = self
            .options
            .idle_timeout
            .min(self.options.header_read_timeout);
        let park_after = PARK_AFTER.min(wait_limit);
        // Nothing is allocated for the connection until its first bytes
        // arrive; they tell HTTP/2 from HTTP/1.
        if !self.wait_readable(&stream, wait_limit).await {
            return;
        }
        if speaks_h2(&stream).await {
            return Box::pin(self.serve_held(TokioIo::new(stream))).await;
        }
        let mut stream = stream;
        let mut pending = Bytes::new();
        loop {
            // Boxed so that hyper's state is allocated only for the session,
            // not kept in the task while the connection is parked.
            match Box::pin(self.session(stream, pending, park_after)).await {
                Some((returned, rest)) => (stream, pending) = (returned, rest),
                None => return,
            }
            if pending.is_empty() && !self.wait_readable(&stream, wait_limit - park_after).await {
                return;
            }
        }
    }

    /// Waits until `stream` has bytes (or its end) to read; `false` when
    /// `limit` passes first or the server stops. Polled by hand: this wait
    /// is what every idle connection's task holds, and `readable()` and
    /// `select!` would make it several hundred bytes larger.
    async fn wait_readable(&self, stream: &TcpStream, limit: Duration) -> bool {
        let stopped = self.stopped.cancelled();
        let timeout = tokio::time::sleep(limit);
        tokio::pin!(stopped, timeout);
        poll_fn(|cx| {
            if stopped.as_mut().poll(cx).is_ready() || timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            stream.poll_read_ready(cx).map(|ready| ready.is_ok())
        })
        .await
    }

    /// Serves requests with a fresh hyper connection until none has been in
    /// flight for `park_after`. Returns the socket and any bytes read past
    /// the last request when the connection may serve more.
    async fn session(
        &self,
        stream: TcpStream,
        pending: Bytes,
        park_after: Duration,
    ) -> Option<(TcpStream, Bytes)> {
        let session = Arc::new(Session::default());
        let activity = Activity::new();
        let service = {
            let session = session.clone();
            self.service(&activity, move |request| session.admit(request))
        };
        let io = TokioIo::new(Replay::new(pending, stream, session.clone()));
        let mut connection = self.builders.http1.serve_connection(io, service);
        let park = tokio::time::sleep(park_after);
        tokio::pin!(park);
        let mut parking = false;
        let mut closing = None::<tokio::time::Instant>;
        let stopped = &self.stopped;
        let result = loop {
            tokio::select! {
                // Until it is parked, the connection runs as hyper's own
                // future, which flushes and shuts the socket down when the
                // connection ends (client closed or asked to, drain): taking
                // the socket back without that would drop what hyper still
                // had to write.
                result = poll_fn(|cx| if parking {
                    connection.poll_without_shutdown(cx)
                } else {
                    std::pin::Pin::new(&mut connection).poll(cx)
                }) => break result,
                _ = park.as_mut(), if !parking && closing.is_none() => {
                    match activity.idle_for() {
                        // Idle long enough after a request, with every byte
                        // written out: an idle hyper connection closes at
                        // once on a graceful shutdown, and nothing of its is
                        // left to send. Before the first request the wait is
                        // hyper's (its header-read timeout), so that a client
                        // slow to send its head is not cut off.
                        Some(idle)
                            if idle >= park_after
                                && session.served_any()
                                && !session.unflushed() =>
                        {
                            std::pin::Pin::new(&mut connection).graceful_shutdown();
                            parking = true;
                        }
                        // A client that stopped reading an answer hyper
                        // still holds: it cannot be parked, so it is closed
                        // like any idle connection, after a grace to take
                        // what it can.
                        Some(idle) if idle >= self.options.idle_timeout => {
                            std::pin::Pin::new(&mut connection).graceful_shutdown();
                            let grace = self.options.close_grace();
                            closing = Some(tokio::time::Instant::now() + grace);
                        }
                        idle => {
                            let left = park_after.saturating_sub(idle.unwrap_or_default());
                            let left = if left.is_zero() { park_after } else { left };
                            park.as_mut().reset(tokio::time::Instant::now() + left);
                        }
                    }
                }
                _ = stopped.cancelled(), if closing.is_none() => {
                    std::pin::Pin::new(&mut connection).graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + self.options.drain_timeout);
                }
                _ = tokio::time::sleep_until(closing.unwrap_or_else(tokio::time::Instant::now)), if closing.is_some() => {
                    tracing::debug!("connection did not close in time; dropping it");
                    return None;
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "connection ended with an error");
            return None;
        }
        // Not parked: hyper ended the connection itself (and flushed and
        // shut it down): the client closed it or asked to, the drain, or
        // the idle timeout.
        if !parking || closing.is_some() || !session.reusable() {
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
