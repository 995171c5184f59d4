//! What a handler reads a request from: hyper's body on connections hyper
//! serves (TLS, HTTP/2), and on cleartext HTTP/1 connections either the
//! bytes that arrived with the head or a body still being read from the
//! client.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};

use crate::{body::BoxError, http1::body::FramedBody};

use super::cleartext::ClientSource;

/// A request body as handlers receive it.
pub struct IncomingBody(Kind);

enum Kind {
    Hyper(Incoming),
    /// All of it, already read (`None` once handed out).
    Buffered(Option<Bytes>),
    /// Read from the client as it is polled.
    Streaming(FramedBody<ClientSource>),
}

impl IncomingBody {
    /// hyper's body of a request.
    pub(super) fn hyper(inner: Incoming) -> Self {
        Self(Kind::Hyper(inner))
    }

    /// A body that is all here.
    pub(super) fn buffered(bytes: Bytes) -> Self {
        Self(Kind::Buffered((!bytes.is_empty()).then_some(bytes)))
    }

    /// A body read from the client on demand.
    pub(super) fn streaming(body: FramedBody<ClientSource>) -> Self {
        Self(Kind::Streaming(body))
    }
}

impl std::fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingBody").finish_non_exhaustive()
    }
}

impl hyper::body::Body for IncomingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Kind::Hyper(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            Kind::Buffered(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Streaming(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Hyper(inner) => inner.is_end_stream(),
            Kind::Buffered(bytes) => bytes.is_none(),
            Kind::Streaming(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Hyper(inner) => inner.size_hint(),
            Kind::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
            Kind::Streaming(inner) => inner.size_hint(),
        }
    }
}
