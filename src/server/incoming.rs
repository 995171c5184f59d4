//! What a handler reads a request from, and what a parked connection
//! resumes from: the request body, which tells its connection when it has
//! been read to the end, and a stream that first replays bytes hyper had
//! already read past the last request.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::parked::Session;

/// A request body as handlers receive it: hyper's body, plus (on a
/// connection parked between requests) a note to the connection once the
/// body has been read to its end. A connection is reused only when its
/// request body was read whole, so bytes of an unread body are never parsed
/// as the next request.
pub struct IncomingBody {
    inner: Incoming,
    /// Taken when the end is reached, so the end is counted once.
    session: Option<Arc<Session>>,
}

impl IncomingBody {
    /// A body whose end nobody needs to hear of.
    pub(super) fn untracked(inner: Incoming) -> Self {
        Self {
            inner,
            session: None,
        }
    }

    /// A body that tells `session` when it has been read whole.
    pub(super) fn tracked(inner: Incoming, session: Arc<Session>) -> Self {
        let mut body = Self {
            inner,
            session: Some(session),
        };
        body.note_end();
        body
    }

    fn note_end(&mut self) {
        if self.inner.is_end_stream() {
            if let Some(session) = self.session.take() {
                session.body_read();
            }
        }
    }
}

impl std::fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingBody").finish_non_exhaustive()
    }
}

impl hyper::body::Body for IncomingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            // Readers such as hyper's client stop at `is_end_stream` without
            // polling for the final `None`, so the end is checked after
            // every frame as well.
            Poll::Ready(Some(Ok(_))) => self.note_end(),
            Poll::Ready(None) => {
                if let Some(session) = self.session.take() {
                    session.body_read();
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A TCP stream as one session sees it: it first yields `pending`, bytes
/// already read from it (pipelined requests) that the next hyper connection
/// must see first, and it tells the session whether hyper has written
/// everything out.
pub(super) struct Replay<S> {
    pending: Bytes,
    stream: S,
    session: Arc<Session>,
}

impl<S> Replay<S> {
    pub(super) fn new(pending: Bytes, stream: S, session: Arc<Session>) -> Self {
        Self {
            pending,
            stream,
            session,
        }
    }

    /// The stream and whatever of `pending` was not read.
    pub(super) fn into_parts(self) -> (Bytes, S) {
        (self.pending, self.stream)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.session.writing();
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.session.writing();
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.session.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
