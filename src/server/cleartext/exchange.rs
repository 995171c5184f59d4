//! One HTTP/1 exchange on a cleartext connection: read the head, hand the
//! request to the handler, write its answer, and decide whether the
//! connection may carry another request.

use std::{
    future::{poll_fn, Future},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::BytesMut;
use http::{Method, Request, Response, Version};
use tokio::{
    net::{tcp::OwnedWriteHalf, TcpStream},
    time::{Instant, Sleep},
};
use tokio_util::io::poll_read_buf;

use crate::{
    body::Body,
    error::{new_request_id, GatewayError},
    http1::{
        body::{FramedBody, Remaining},
        chunked::Chunked,
        MAX_HEAD, READ_CHUNK,
    },
};

use super::{
    body::{ClientSource, Handoff},
    request::{self, Framing, Head},
    response::{self, Exchange},
    shut_down,
};
use crate::server::{Connection, Handler, IncomingBody};

/// Most of a refused request body read and dropped before its connection
/// closes, so that the client reads the answer rather than a reset.
const MAX_LINGER_BYTES: usize = 1 << 20;

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
    Split(OwnedWriteHalf, Arc<Handoff>),
}

impl<H: Handler> Connection<H> {
    /// Reads, handles and answers one request. Returns the socket and what
    /// was read past the request when the connection may serve another.
    /// `stopped` is the server's stop signal; `session` the handler's, for the
    /// connection's busy period.
    pub(super) async fn exchange<S: Future>(
        &self,
        mut stream: TcpStream,
        mut buf: BytesMut,
        stopped: Pin<&mut S>,
        session: &mut H::Session,
    ) -> Option<(TcpStream, BytesMut)> {
        let head = match self.read_head(&mut stream, &mut buf).await {
            Ok(Read::Head(head)) => head,
            Ok(Read::Nothing) => return Some((stream, buf)),
            Ok(Read::Closed) => return None,
            Err(error) => {
                self.refuse(&stream, &error).await;
                return None;
            }
        };
        let method = head.parts.method.clone();
        let version = head.parts.version;
        let keep_alive = head.keep_alive;
        let (request, mut held) = admit(head, stream, buf);
        let response = self.handle(request, &mut held, stopped, session).await?;
        let exchange = Exchange {
            method: &method,
            version,
            keep_alive: keep_alive && !self.stopped.is_cancelled(),
            write_timeout: self.options.idle_timeout,
            prefix: b"",
        };
        self.answer(held, response, exchange).await
    }

    /// Runs the handler. `None` when its work is dropped: the client left
    /// first (the end of its stream came while the request was whole), or
    /// the server stopped and the drain timeout passed.
    async fn handle<S: Future>(
        &self,
        request: Request<IncomingBody>,
        held: &mut Held,
        mut stopped: Pin<&mut S>,
        session: &mut H::Session,
    ) -> Option<Response<Body>> {
        // Pinned where it is made: the handler's future is the largest part
        // of the exchange, and is not worth a second copy.
        let mut handling = std::pin::pin!(self.handler.handle(request, self.peer, session));
        // A body being read sees the client leave itself.
        let mut watching = matches!(held, Held::Whole(..));
        let mut drain: Option<Pin<Box<Sleep>>> = None;
        poll_fn(|cx| {
            if let Poll::Ready(response) = handling.as_mut().poll(cx) {
                return Poll::Ready(Some(response));
            }
            if let (true, Held::Whole(stream, buf)) = (watching, &mut *held) {
                match poll_client_left(stream, buf, cx) {
                    Poll::Ready(true) => {
                        tracing::debug!("the client left before its answer");
                        return Poll::Ready(None);
                    }
                    Poll::Ready(false) => watching = false,
                    Poll::Pending => {}
                }
            }
            if drain.is_none() && stopped.as_mut().poll(cx).is_ready() {
                drain = Some(Box::pin(tokio::time::sleep(self.options.drain_timeout)));
            }
            if let Some(deadline) = drain.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    tracing::debug!("the drain timeout passed before the answer");
                    return Poll::Ready(None);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Writes the answer; returns the socket when the connection may serve
    /// another request. A request body still unread keeps the socket's read
    /// side, and the connection then ends with this answer.
    async fn answer(
        &self,
        held: Held,
        response: Response<Body>,
        mut exchange: Exchange<'_>,
    ) -> Option<(TcpStream, BytesMut)> {
        let (write, handoff) = match held {
            Held::Whole(stream, buf) => return answer_whole(stream, buf, response, exchange).await,
            Held::Split(write, handoff) => (write, handoff),
        };
        let (returned, unsent) = handoff.answer();
        exchange.prefix = unsent;
        if let Some((read, buf)) = returned {
            let stream = read.reunite(write).expect("the halves of one stream");
            return answer_whole(stream, buf, response, exchange).await;
        }
        exchange.keep_alive = false;
        if let Err(error) = response::write(write.as_ref(), response, exchange).await {
            tracing::debug!(%error, "the answer could not be written whole");
            return None;
        }
        // Once the body is dropped nobody else reads the socket: what the
        // client still sends of it is read and dropped.
        if Arc::strong_count(&handoff) == 1 {
            self.linger(write.as_ref()).await;
        } else {
            shut_down(write.as_ref());
        }
        None
    }

    /// Answers a head the server refuses, and ends the connection.
    async fn refuse(&self, stream: &TcpStream, error: &GatewayError) {
        tracing::debug!(reason = error.reason(), "refused a request head");
        let id = new_request_id();
        let response = error.to_response(id.to_str().unwrap_or_default());
        let exchange = Exchange {
            method: &Method::GET,
            version: Version::HTTP_11,
            keep_alive: false,
            write_timeout: self.options.idle_timeout,
            prefix: b"",
        };
        if response::write(stream, response, exchange).await.is_ok() {
            self.linger(stream).await;
        }
    }

    /// Reads until `buf` holds a whole request head. The header-read
    /// timer starts only if the head is not there at once.
    async fn read_head(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
    ) -> Result<Read, GatewayError> {
        let mut deadline = None;
        // Parsed again only once a line has ended since the last try: a
        // head sent a byte at a time costs one parse per line, not per byte.
        let mut parse_from = Some(0);
        loop {
            if let Some(from) = parse_from.take() {
                if memchr::memchr(b'\n', &buf[from..]).is_some() {
                    if let Some(head) = request::parse(buf)? {
                        return Ok(Read::Head(head));
                    }
                }
            }
            // Bytes that end no line are never parsed: the limit on a head's
            // size is checked here too, or a line without end would grow the
            // buffer for ever.
            if buf.len() > MAX_HEAD {
                return Err(GatewayError::HeadTooLarge);
            }
            buf.reserve(READ_CHUNK);
            let before = buf.len();
            // Read as `AsyncRead` does, not with `try_read`: a read that
            // leaves room in the buffer marks the socket drained, so the
            // next wait goes straight to the poller instead of first
            // reading nothing.
            let read = poll_fn(|cx| match poll_read_buf(Pin::new(&mut *stream), cx, buf) {
                Poll::Ready(read) => Poll::Ready(Some(read)),
                Poll::Pending => Poll::Ready(None),
            })
            .await;
            match read {
                Some(Ok(0) | Err(_)) => return Ok(Read::Closed),
                Some(Ok(_)) => parse_from = Some(before),
                // Nothing of a request yet: that wait is the idle wait.
                None if buf.is_empty() => return Ok(Read::Nothing),
                None => {
                    let deadline = *deadline
                        .get_or_insert_with(|| Instant::now() + self.options.header_read_timeout);
                    match tokio::time::timeout_at(deadline, stream.readable()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return Ok(Read::Closed),
                    }
                }
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
        // On the heap: kept inline, it would make every exchange's future
        // (moved into its box once per request) 16 KiB larger.
        let mut scratch = vec![0u8; 16 * 1024];
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

/// Writes the answer on a whole socket; returns it when the connection may
/// serve another request.
async fn answer_whole(
    stream: TcpStream,
    buf: BytesMut,
    response: Response<Body>,
    exchange: Exchange<'_>,
) -> Option<(TcpStream, BytesMut)> {
    match response::write(&stream, response, exchange).await {
        Ok(true) => Some((stream, buf)),
        Ok(false) => {
            shut_down(&stream);
            None
        }
        Err(error) => {
            tracing::debug!(%error, "the answer could not be written whole");
            None
        }
    }
}

/// The request as the handler gets it, and the socket as the exchange
/// holds it meanwhile: a body that came whole with its head is taken off
/// the buffer; one still to come gets the socket's read side.
fn admit(head: Head, stream: TcpStream, mut buf: BytesMut) -> (Request<IncomingBody>, Held) {
    let remaining = match head.framing {
        Framing::Empty => {
            let body = IncomingBody::buffered(Default::default());
            return (
                Request::from_parts(head.parts, body),
                Held::Whole(stream, buf),
            );
        }
        Framing::Length(length) if buf.len() as u64 >= length => {
            let body = IncomingBody::buffered(buf.split_to(length as usize).freeze());
            return (
                Request::from_parts(head.parts, body),
                Held::Whole(stream, buf),
            );
        }
        Framing::Length(length) => Remaining::Length(length),
        Framing::Chunked => Remaining::Chunked(Chunked::new()),
    };
    let (read, write) = stream.into_split();
    let handoff = Arc::new(Handoff::default());
    let source = ClientSource::new((read, buf), handoff.clone(), head.expects_continue);
    let body = IncomingBody::streaming(FramedBody::new(source, remaining));
    (
        Request::from_parts(head.parts, body),
        Held::Split(write, handoff),
    )
}

/// Whether the client has left while its request is handled: `Ready(true)`
/// at the end of its stream (or a broken one), `Ready(false)` once it has
/// sent more (a pipelined request, kept in `buf`; nothing is watched after
/// that), `Pending` while it is quiet. Costs no system call until the
/// socket turns readable.
fn poll_client_left(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<bool> {
    if stream.poll_read_ready(cx).is_pending() {
        return Poll::Pending;
    }
    buf.reserve(READ_CHUNK);
    match poll_read_buf(Pin::new(stream), cx, buf) {
        Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(true),
        Poll::Ready(Ok(_)) => Poll::Ready(false),
        Poll::Pending => Poll::Pending,
    }
}
