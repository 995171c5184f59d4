//! Cleartext connections: HTTP/2 with prior knowledge goes to hyper
//! ([`super::held`]); HTTP/1 is served here, one request at a time, in the
//! connection's own task.
//!
//! The HTTP/1 side is the server's own because it is the hot path of every
//! sidecar deployment: a request whose head arrives in one read is parsed,
//! handled and answered without a timer, a channel or a second task, and
//! the answer leaves in one write when it is small. A connection quiet for
//! longer than [`BUSY_GRACE`] holds no buffer, only its socket and a small
//! task, as in nginx.
//!
//! What is parsed is strict (`request`): one way to delimit a body or
//! none, and a request the server refuses is answered with a Wix-shaped
//! error and the connection closed. A body not read to its end keeps the
//! connection from serving another request, so its bytes can never be
//! taken for one.

mod body;
mod exchange;
mod request;
mod response;

pub(crate) use body::ClientSource;

use std::{
    future::{poll_fn, Future},
    pin::Pin,
    task::Poll,
    time::Duration,
};

use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpStream,
    time::{Instant, Sleep},
};

use super::{Connection, Handler};
use crate::clock::monotonic_millis;

/// What an HTTP/2 client sends first when it speaks HTTP/2 in cleartext.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first wait between looks at a first segment too short to tell
/// HTTP/2 from HTTP/1; it doubles up to [`PREFACE_POLL_MAX`].
const PREFACE_POLL: Duration = Duration::from_millis(5);
const PREFACE_POLL_MAX: Duration = Duration::from_millis(100);

/// How long a client may take to finish the HTTP/2 preface it started: a
/// real one sends all 24 bytes at once.
const PREFACE_LIMIT: Duration = Duration::from_secs(1);

/// Whether the connection opens with HTTP/2's whole preface. A client whose
/// first bytes are only part of it is waited for (up to `limit`, and at
/// most [`PREFACE_LIMIT`]) until it has sent all of it or something else:
/// HTTP/1 is never handed to hyper's laxer parser on the strength of a `P`.
/// A client that sends no more is closed.
async fn speaks_h2(stream: &TcpStream, limit: Duration) -> Option<bool> {
    let mut first = [0; H2_PREFACE.len()];
    let until = Instant::now() + limit.min(PREFACE_LIMIT);
    let mut poll = PREFACE_POLL;
    loop {
        match stream.peek(&mut first).await {
            Ok(n) if n == H2_PREFACE.len() => return Some(first == H2_PREFACE),
            Ok(n) if n > 0 && H2_PREFACE.starts_with(&first[..n]) => {}
            Ok(_) => return Some(false),
            Err(_) => return None,
        }
        // A peek leaves the bytes, and the socket readable: wait by time.
        if Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(PREFACE_POLL_MAX);
    }
}

impl<H: Handler> Connection<H> {
    /// Serves a cleartext connection until the client leaves, it idles out,
    /// a request ends it, or the server stops.
    pub(super) async fn serve_cleartext(self, mut stream: TcpStream) {
        let wait_limit = self
            .options
            .idle_timeout
            .min(self.options.header_read_timeout);
        // One timer and one stop signal for the connection's whole life,
        // looked at only while it waits: a busy connection arms nothing per
        // request.
        let stop = self.stopped.clone();
        let stopped = stop.cancelled();
        let idle = tokio::time::sleep(wait_limit);
        tokio::pin!(stopped, idle);
        if !wait_readable(&stream, stopped.as_mut(), idle.as_mut(), wait_limit).await {
            return;
        }
        match speaks_h2(&stream, self.options.header_read_timeout).await {
            Some(true) => return Box::pin(self.serve_held(TokioIo::new(stream))).await,
            Some(false) => {}
            None => return,
        }
        loop {
            // Boxed: what serving holds (the handler's future, the answer,
            // the read buffer) is allocated while requests keep coming,
            // never kept in the task of an idle connection.
            stream = match Box::pin(self.busy(stream, stopped.as_mut())).await {
                Some(quiet) => quiet,
                None => return,
            };
            if !wait_readable(&stream, stopped.as_mut(), idle.as_mut(), wait_limit).await {
                return;
            }
        }
    }

    /// Serves requests for as long as the next one comes within
    /// [`BUSY_GRACE`] of the last answer, with one allocation of the
    /// exchange's state and one read buffer for all of them. Returns the
    /// socket, with nothing read from it, once it has been quiet that long
    /// (or the server stops).
    async fn busy<S: Future>(
        &self,
        mut stream: TcpStream,
        mut stopped: Pin<&mut S>,
    ) -> Option<TcpStream> {
        let grace = tokio::time::sleep(BUSY_GRACE);
        tokio::pin!(grace);
        let mut buf = BytesMut::new();
        let mut session = H::Session::default();
        loop {
            (stream, buf) = self
                .exchange(stream, buf, stopped.as_mut(), &mut session)
                .await?;
            if buf.is_empty()
                && !wait_readable(&stream, stopped.as_mut(), grace.as_mut(), BUSY_GRACE).await
            {
                return Some(stream);
            }
        }
    }
}

/// How long a connection keeps what serving needs after its last answer.
/// Short: a connection under load never waits this long, and every one
/// that does holds its buffers meanwhile.
const BUSY_GRACE: Duration = Duration::from_millis(50);

/// Sends the end of the stream: the client reads to it, and its next
/// request fails at once instead of waiting for an answer.
fn shut_down(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
}

/// Waits until `stream` has bytes (or its end) to read; `false` when it has
/// waited `limit` or the server stops. `idle` is re-armed only when it
/// fires early (it was set during an earlier wait), so a connection that
/// is never idle for long never touches the timer.
async fn wait_readable<S: Future>(
    stream: &TcpStream,
    mut stopped: Pin<&mut S>,
    mut idle: Pin<&mut Sleep>,
    limit: Duration,
) -> bool {
    // Read on every wait, so from the coarse clock; the timer is set from
    // the precise one only when it fired early.
    let due = monotonic_millis().saturating_add(limit.as_millis() as u64);
    poll_fn(|cx| {
        if let Poll::Ready(ready) = stream.poll_read_ready(cx) {
            return Poll::Ready(ready.is_ok());
        }
        if stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        while idle.as_mut().poll(cx).is_ready() {
            let now = monotonic_millis();
            if now >= due {
                return Poll::Ready(false);
            }
            idle.as_mut()
                .reset(Instant::now() + Duration::from_millis(due - now));
        }
        Poll::Pending
    })
    .await
}
