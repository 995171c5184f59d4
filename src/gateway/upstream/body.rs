//! A response body streamed from a pooled upstream connection. The
//! connection goes back to the pool when the body has been read to its
//! exact end; dropped half-way or ended any other way, it is closed.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio_util::io::poll_read_buf;

use super::{
    chunked::{Chunked, Step},
    pool::{Conn, Pool, READ_CHUNK},
};

/// How the rest of the body is delimited.
#[derive(Debug)]
pub(super) enum Remaining {
    /// This many bytes more.
    Length(u64),
    /// The rest of a chunked coding.
    Chunked(Chunked),
    /// Whatever comes until the upstream closes.
    UntilClose,
}

/// The body of one upstream response.
#[derive(Debug)]
pub(super) struct ResponseBody {
    reading: Option<Reading>,
}

#[derive(Debug)]
struct Reading {
    conn: Conn,
    remaining: Remaining,
    /// Whether the connection may serve another request after this body.
    reusable: bool,
    pool: Arc<Pool>,
}

impl ResponseBody {
    /// The body that follows on `conn`, framed as `remaining` says.
    pub fn new(conn: Conn, remaining: Remaining, reusable: bool, pool: Arc<Pool>) -> Self {
        Self {
            reading: Some(Reading {
                conn,
                remaining,
                reusable,
                pool,
            }),
        }
    }

    /// The body is complete: its connection goes back to the pool if it can
    /// serve again.
    fn finish(&mut self) {
        if let Some(reading) = self.reading.take() {
            let reusable = reading.reusable && !matches!(reading.remaining, Remaining::UntilClose);
            reading.pool.finish(reading.conn, reusable);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.reading = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Reading {
    /// The next piece of the body the buffer already holds.
    fn step(&mut self) -> io::Result<Step> {
        let buf = &mut self.conn.buf;
        Ok(match &mut self.remaining {
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

impl Body for ResponseBody {
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
            match reading.step() {
                Err(error) => return this.fail(error),
                Ok(Step::Data(bytes)) => {
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
            reading.conn.buf.reserve(READ_CHUNK);
            let read = ready!(poll_read_buf(
                Pin::new(&mut reading.conn.stream),
                cx,
                &mut reading.conn.buf
            ));
            match read {
                Ok(0) if matches!(reading.remaining, Remaining::UntilClose) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection in the middle of a response",
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
