//! Cleartext connections: HTTP/2 with prior knowledge goes to hyper
//! ([`super::held`]); HTTP/1 is served here, one request at a time, in the
//! connection's own task.
//!
//! The HTTP/1 side is the server's own because it is the hot path of every
//! sidecar deployment: a request whose head arrives in one read is parsed,
//! handled and answered without a timer, a channel or a second task, and
//! the answer leaves in one write when it is small. An idle connection
//! holds no buffer, only its socket and a small task, as in nginx.
//!
//! What is parsed is strict (`request`): one way to delimit a body or
//! none, and a request the server refuses is answered with a Wix-shaped
//! error and the connection closed. A body not read to its end keeps the
//! connection from serving another request, so its bytes can never be
//! taken for one.

mod body;
mod request;
mod response;

pub(crate) use body::ClientSource;

use std::{
    future::{poll_fn, Future},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use bytes::BytesMut;
use http::{Method, Request, Version};
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpStream,
    time::{Instant, Sleep},
};

use crate::{
    error::{new_request_id, GatewayError},
    http1::{
        body::{FramedBody, Remaining},
        chunked::Chunked,
        READ_CHUNK,
    },
};

use super::{Connection, Handler, IncomingBody};
use body::Handoff;
use request::{Framing, Head};
use response::Exchange;

/// What an HTTP/2 client sends first when it speaks HTTP/2 in cleartext.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most of a refused request body read and dropped before its connection
/// closes, so that the client reads the answer rather than a reset.
const MAX_LINGER_BYTES: usize = 1 << 20;

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

/// What reading a request head came to.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and taken apart at once; boxing the head would allocate"
)]
enum Read {
    Head(Head),
    /// No byte of a request has arrived yet.
    Nothing,
    /// The client closed, broke the connection, or took longer than the
    /// header-read timeout.
    Closed,
}

/// The socket during one exchange.
enum Held {
    /// Whole, with what has been read past the request's head and body.
    Whole(TcpStream, BytesMut),
    /// Its read side is with a request body still being read.
    Split(tokio::net::tcp::OwnedWriteHalf, Arc<Handoff>),
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
        if speaks_h2(&stream).await {
            return Box::pin(self.serve_held(TokioIo::new(stream))).await;
        }
        let mut buf = BytesMut::new();
        loop {
            // Boxed: what an exchange holds (the handler's future, the
            // answer) is allocated for the exchange only, never kept in
            // the task of an idle connection.
            match Box::pin(self.exchange(stream, buf)).await {
                Some((returned, rest)) => (stream, buf) = (returned, rest),
                None => return,
            }
            if buf.is_empty() {
                // Idle until the next request: no buffer is kept.
                buf = BytesMut::new();
                if !wait_readable(&stream, stopped.as_mut(), idle.as_mut(), wait_limit).await {
                    return;
                }
            }
        }
    }

    /// Reads, handles and answers one request. Returns the socket and what
    /// was read past the request when the connection may serve another.
    async fn exchange(
        &self,
        stream: TcpStream,
        mut buf: BytesMut,
    ) -> Option<(TcpStream, BytesMut)> {
        let head = match self.read_head(&stream, &mut buf).await {
            Ok(Read::Head(head)) => head,
            Ok(Read::Nothing) => return Some((stream, buf)),
            Ok(Read::Closed) => return None,
            Err(error) => {
                tracing::debug!(reason = error.reason(), "refused a request head");
                let id = new_request_id();
                let response = error.to_response(id.to_str().unwrap_or_default());
                let exchange = Exchange {
                    method: &Method::GET,
                    version: Version::HTTP_11,
                    keep_alive: false,
                    write_timeout: self.options.idle_timeout,
                };
                let _ = response::write(&stream, response, exchange).await;
                self.linger(&stream).await;
                return None;
            }
        };
        let Head {
            parts,
            framing,
            keep_alive,
            expects_continue,
        } = head;
        let method = parts.method.clone();
        let version = parts.version;
        let (body, held) = match framing {
            Framing::Empty => (
                IncomingBody::buffered(Default::default()),
                Held::Whole(stream, buf),
            ),
            Framing::Length(length) if buf.len() as u64 >= length => {
                let bytes = buf.split_to(length as usize).freeze();
                (IncomingBody::buffered(bytes), Held::Whole(stream, buf))
            }
            Framing::Length(_) | Framing::Chunked => {
                let remaining = match framing {
                    Framing::Length(length) => Remaining::Length(length),
                    _ => Remaining::Chunked(Chunked::new()),
                };
                let (read, write) = stream.into_split();
                let handoff = Arc::new(Handoff::default());
                let source = ClientSource::new((read, buf), handoff.clone(), expects_continue);
                let body = IncomingBody::streaming(FramedBody::new(source, remaining));
                (body, Held::Split(write, handoff))
            }
        };

        let response = self
            .handler
            .handle(Request::from_parts(parts, body), self.peer)
            .await;

        // A body still unread keeps the socket's read side: the connection
        // then ends with this answer.
        let (whole, unread) = match held {
            Held::Whole(stream, buf) => (Ok((stream, buf)), None),
            Held::Split(write, handoff) => match handoff.answer() {
                Some((read, buf)) => (
                    Ok((read.reunite(write).expect("the halves of one stream"), buf)),
                    None,
                ),
                None => (Err(write), Some(handoff)),
            },
        };
        let keep_alive = keep_alive && whole.is_ok() && !self.stopped.is_cancelled();
        let exchange = Exchange {
            method: &method,
            version,
            keep_alive,
            write_timeout: self.options.idle_timeout,
        };
        match whole {
            Ok((stream, buf)) => match response::write(&stream, response, exchange).await {
                Ok(true) => Some((stream, buf)),
                Ok(false) => {
                    shut_down(&stream);
                    None
                }
                Err(error) => {
                    tracing::debug!(%error, "the answer could not be written whole");
                    None
                }
            },
            Err(write) => {
                if let Err(error) = response::write(write.as_ref(), response, exchange).await {
                    tracing::debug!(%error, "the answer could not be written whole");
                    return None;
                }
                // Once the body is dropped nobody else reads the socket:
                // what the client still sends of it is read and dropped.
                if unread.is_some_and(|handoff| Arc::strong_count(&handoff) == 1) {
                    self.linger(write.as_ref()).await;
                } else {
                    shut_down(write.as_ref());
                }
                None
            }
        }
    }

    /// Reads until `buf` holds a whole request head. The header-read
    /// timer starts only if the head is not there at once.
    async fn read_head(
        &self,
        stream: &TcpStream,
        buf: &mut BytesMut,
    ) -> Result<Read, GatewayError> {
        let mut deadline = None;
        loop {
            if !buf.is_empty() {
                if let Some(head) = request::parse(buf)? {
                    return Ok(Read::Head(head));
                }
            }
            buf.reserve(READ_CHUNK);
            match stream.try_read_buf(buf) {
                Ok(0) => return Ok(Read::Closed),
                Ok(_) => {}
                // The socket looked readable, but from an earlier read: the
                // wait for a request is the idle wait, not this one.
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock && buf.is_empty() => {
                    return Ok(Read::Nothing)
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    let deadline = *deadline
                        .get_or_insert_with(|| Instant::now() + self.options.header_read_timeout);
                    match tokio::time::timeout_at(deadline, stream.readable()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return Ok(Read::Closed),
                    }
                }
                Err(_) => return Ok(Read::Closed),
            }
        }
    }

    /// Closes the connection after its answer while the client may still be
    /// sending a body nobody reads: the write side is shut, and what comes
    /// is read and dropped for a short while, so that the client sees the
    /// answer and the end of the stream rather than a reset.
    async fn linger(&self, stream: &TcpStream) {
        shut_down(stream);
        let until = Instant::now() + self.options.close_grace();
        let mut scratch = [0u8; 16 * 1024];
        let mut dropped = 0;
        while dropped < MAX_LINGER_BYTES {
            match stream.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(n) => dropped += n,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    match tokio::time::timeout_at(until, stream.readable()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return,
                    }
                }
                Err(_) => return,
            }
        }
    }
}

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
    let due = Instant::now() + limit;
    poll_fn(|cx| {
        if let Poll::Ready(ready) = stream.poll_read_ready(cx) {
            return Poll::Ready(ready.is_ok());
        }
        if stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        while idle.as_mut().poll(cx).is_ready() {
            if Instant::now() >= due {
                return Poll::Ready(false);
            }
            idle.as_mut().reset(due);
        }
        Poll::Pending
    })
    .await
}
