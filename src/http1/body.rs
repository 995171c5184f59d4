//! A message body read off a connection as its framing delimits it: an
//! upstream response on its way to the client, or a client's request body
//! on its way upstream. The connection is handed back (to the upstream
//! pool, to the client connection that serves the next request) only when
//! the body has been read to its exact end; dropped half-way or ended any
//! other way, the connection goes with it.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncRead;
use tokio_util::io::poll_read_buf;

use super::{
    chunked::{Chunked, Step},
    READ_CHUNK,
};

/// How the rest of a body is delimited.
#[derive(Debug)]
pub(crate) enum Remaining {
    /// This many bytes more.
    Length(u64),
    /// The rest of a chunked coding.
    Chunked(Chunked),
    /// Whatever comes until the peer closes.
    UntilClose,
}

impl Remaining {
    /// The next piece of the body `buf` already holds.
    fn step(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        Ok(match self {
            Remaining::Length(0) => Step::End,
            Remaining::Length(_) | Remaining::UntilClose if buf.is_empty() => Step::NeedMore,
            Remaining::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Step::Data(buf.split_to(take as usize).freeze())
            }
            Remaining::UntilClose => Step::Data(buf.split().freeze()),
            Remaining::Chunked(decoder) => decoder.step(buf)?,
        })
    }
}

/// The connection a body is read from.
pub(crate) trait Source: Unpin {
    /// What the body's bytes are read from.
    type Stream: AsyncRead + Unpin;

    /// The stream, and the bytes read from it and not yet used.
    fn io(&mut self) -> (&mut Self::Stream, &mut BytesMut);

    /// Called before the body first waits for bytes from the stream.
    fn before_first_read(&mut self) {}

    /// The body was read to its exact end; `reusable` says whether its
    /// framing lets the connection carry another message.
    fn finished(self, reusable: bool);
}

/// A body read from `S` as framed.
#[derive(Debug)]
pub(crate) struct FramedBody<S> {
    reading: Option<Reading<S>>,
}

#[derive(Debug)]
struct Reading<S> {
    source: S,
    remaining: Remaining,
    waited: bool,
}

impl<S: Source> FramedBody<S> {
    /// The body that follows on `source`, framed as `remaining` says.
    pub(crate) fn new(source: S, remaining: Remaining) -> Self {
        Self {
            reading: Some(Reading {
                source,
                remaining,
                waited: false,
            }),
        }
    }

    /// The body is complete: its connection is handed back.
    fn finish(&mut self) {
        if let Some(reading) = self.reading.take() {
            let reusable = !matches!(reading.remaining, Remaining::UntilClose);
            reading.source.finished(reusable);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.reading = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl<S: Source> Body for FramedBody<S> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        loop {
            let Some(reading) = this.reading.as_mut() else {
                return Poll::Ready(None);
            };
            let (_, buf) = reading.source.io();
            match reading.remaining.step(buf) {
                Err(error) => return this.fail(error),
                Ok(Step::Data(bytes)) => {
                    // Readers that stop at `is_end_stream` never poll for
                    // the end: a body whose last byte is out is complete.
                    if matches!(reading.remaining, Remaining::Length(0)) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
            }
            if !reading.waited {
                reading.waited = true;
                reading.source.before_first_read();
            }
            let (stream, buf) = reading.source.io();
            buf.reserve(READ_CHUNK);
            let read = ready!(poll_read_buf(Pin::new(stream), cx, buf));
            match read {
                Ok(0) if matches!(reading.remaining, Remaining::UntilClose) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed in the middle of a body",
                    ))
                }
                Ok(_) => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reading
            .as_ref()
            .is_none_or(|reading| matches!(reading.remaining, Remaining::Length(0)))
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading.as_ref().map(|reading| &reading.remaining) {
            None => SizeHint::with_exact(0),
            Some(Remaining::Length(left)) => SizeHint::with_exact(*left),
            Some(_) => SizeHint::default(),
        }
    }
}
