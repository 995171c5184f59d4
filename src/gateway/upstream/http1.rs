//! The transport to a cleartext upstream: HTTP/1.1 over pooled keep-alive
//! connections, driven by the request's own task. A general client hands
//! each request to a connection task and back (two wake-ups and a channel
//! per request) and checks out of a pool keyed by origin; an upstream here
//! is one fixed origin, so none of that is needed (bench/profile-notes.md).

use std::{
    io,
    pin::pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{tcp::WriteHalf, TcpStream},
};

use super::{
    head::{
        parse_response_head, response_framing, write_request_head, BodyFraming, RequestFraming,
        ResponseHead,
    },
    pool::{Conn, Pool},
    Outgoing,
};
use crate::{
    body::{self, Body, BoxError},
    http1::{
        body::{FramedBody, Remaining, Source},
        chunked::{chunk_head, Chunked, CHUNK_HEAD},
        invalid, KnownNames, READ_CHUNK,
    },
};

/// Bodies up to this size are written in the same system call as the head.
const COALESCE: usize = 16 * 1024;

/// Most interim (1xx) responses skipped before the final one.
const MAX_INFORMATIONAL: usize = 8;

/// Most idle connections kept.
const MAX_IDLE: usize = 1024;

/// A cleartext HTTP/1.1 upstream.
#[derive(Debug)]
pub(super) struct Http1 {
    /// Where to connect: host and port.
    host: String,
    port: u16,
    /// The `Host` header every request carries.
    authority: HeaderValue,
    connect_timeout: Duration,
    pool: Arc<Pool>,
}

/// How an exchange failed.
enum Failure {
    /// The connection ended before any byte of an answer arrived. On a
    /// reused connection this is how an upstream's closing of an idle
    /// connection shows, and the request may be sent again on a new one.
    NoAnswer {
        error: io::Error,
        /// Whether any byte of the request reached the socket.
        any_sent: bool,
    },
    /// Anything else.
    Failed(io::Error),
}

impl Failure {
    fn into_error(self) -> io::Error {
        match self {
            Failure::NoAnswer { error, .. } | Failure::Failed(error) => error,
        }
    }
}

impl Http1 {
    /// A transport to `host:port`, announced as `authority`.
    pub fn new(
        host: &str,
        port: u16,
        authority: HeaderValue,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            // An IPv6 literal comes bracketed in a URL, bare to connect().
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            authority,
            connect_timeout,
            pool: Pool::new(MAX_IDLE, idle_timeout),
        }
    }

    /// Sends one request and returns the response once its head has
    /// arrived; the body streams after.
    pub async fn send<'h>(
        &self,
        method: &Method,
        path: &str,
        headers: impl IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
        body: Outgoing,
    ) -> io::Result<Response<Body>> {
        // Methods that carry a body announce even an empty one, as clients
        // do; the others announce none when they have none.
        let announces_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        let framing = match &body {
            Outgoing::Bytes(bytes) if bytes.is_empty() && !announces_body => RequestFraming::None,
            Outgoing::Bytes(bytes) => RequestFraming::Length(bytes.len() as u64),
            Outgoing::Stream(stream) => match hyper::body::Body::size_hint(stream).exact() {
                Some(0) if !announces_body => RequestFraming::None,
                Some(length) => RequestFraming::Length(length),
                None => RequestFraming::Chunked,
            },
        };
        // Room for the request line, an app token and the forwarded fields
        // without growing.
        let mut head = Vec::with_capacity(2048);
        write_request_head(&mut head, method, path, &self.authority, headers, framing);

        let stream = match body {
            Outgoing::Bytes(bytes) => {
                let rest = if head.len() + bytes.len() <= COALESCE {
                    head.extend_from_slice(&bytes);
                    Bytes::new()
                } else {
                    bytes
                };
                return self.send_bytes(method, &head, &rest).await;
            }
            Outgoing::Stream(stream) => stream,
        };
        let conn = match self.pool.checkout() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        self.exchange(conn, method, &head, Payload::Stream(stream, framing))
            .await
            .map_err(Failure::into_error)
    }

    /// Sends a request whose body is in memory, so it can be sent again: a
    /// reused connection that turns out closed before answering costs one
    /// more try on a new connection. The request is sent again only where
    /// that cannot do anything twice: no byte of it was written, or its
    /// method is idempotent.
    async fn send_bytes(
        &self,
        method: &Method,
        head: &[u8],
        rest: &Bytes,
    ) -> io::Result<Response<Body>> {
        if let Some(conn) = self.pool.checkout() {
            match self
                .exchange(conn, method, head, Payload::Bytes(rest))
                .await
            {
                Ok(response) => return Ok(response),
                Err(Failure::NoAnswer { error, any_sent })
                    if !any_sent || method.is_idempotent() =>
                {
                    tracing::debug!(%error, "a pooled upstream connection was closed; retrying");
                }
                Err(failure) => return Err(failure.into_error()),
            }
        }
        let conn = self.connect().await?;
        self.exchange(conn, method, head, Payload::Bytes(rest))
            .await
            .map_err(Failure::into_error)
    }

    /// How many connections are idle in the pool.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.pool.idle()
    }

    async fn connect(&self) -> io::Result<Conn> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Conn::new(stream))
    }

    /// Writes the request on `conn` and reads the response head.
    async fn exchange(
        &self,
        mut conn: Conn,
        method: &Method,
        head: &[u8],
        payload: Payload<'_>,
    ) -> Result<Response<Body>, Failure> {
        let (mut head, complete) = write_and_read_head(&mut conn, head, payload).await?;
        let mut framing = response_framing(method, &mut head).map_err(Failure::Failed)?;
        // Answered before the whole request was written: the connection is
        // left in the middle of a request and serves no other.
        framing.reusable &= complete;

        let pool = &self.pool;
        let body = match framing.body {
            BodyFraming::Empty => {
                pool.finish(conn, framing.reusable);
                body::empty()
            }
            // The whole body is here already: the connection is free now.
            BodyFraming::Length(length) if conn.buf.len() as u64 >= length => {
                let bytes = conn.buf.split_to(length as usize).freeze();
                pool.finish(conn, framing.reusable);
                body::full(bytes)
            }
            BodyFraming::Length(length) => {
                streamed(conn, Remaining::Length(length), framing.reusable, pool)
            }
            BodyFraming::Chunked => streamed(
                conn,
                Remaining::Chunked(Chunked::new()),
                framing.reusable,
                pool,
            ),
            BodyFraming::UntilClose => streamed(conn, Remaining::UntilClose, false, pool),
        };
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = head.headers;
        Ok(response)
    }
}

fn streamed(conn: Conn, remaining: Remaining, reusable: bool, pool: &Arc<Pool>) -> Body {
    let source = Pooled {
        conn,
        reusable,
        pool: pool.clone(),
    };
    FramedBody::new(source, remaining)
        .map_err(BoxError::from)
        .boxed()
}

/// A response body's connection, which goes back to the pool once the body
/// has been read to its end, if it can serve again.
#[derive(Debug)]
struct Pooled {
    conn: Conn,
    /// Whether the response's head lets the connection serve again.
    reusable: bool,
    pool: Arc<Pool>,
}

impl Source for Pooled {
    type Stream = TcpStream;

    fn io(&mut self) -> (&mut TcpStream, &mut BytesMut) {
        (&mut self.conn.stream, &mut self.conn.buf)
    }

    fn finished(self, reusable: bool) {
        self.pool.finish(self.conn, self.reusable && reusable);
    }
}

/// A request body to write after the head.
enum Payload<'a> {
    /// Whatever of an in-memory body was not written with the head.
    Bytes(&'a Bytes),
    /// A body streamed from the client, framed as announced.
    Stream(Body, RequestFraming),
}

/// Writes the request on `conn` while watching for its answer, and returns
/// the final response head and whether the whole request was written. An
/// upstream may answer before it has read the whole body (a 413, a 401) and
/// then stop reading or close: that answer is returned, the rest of the
/// body is not sent, and the exchange does not hang on a write nobody reads.
async fn write_and_read_head(
    conn: &mut Conn,
    head: &[u8],
    payload: Payload<'_>,
) -> Result<(ResponseHead, bool), Failure> {
    let Conn { stream, buf, names } = conn;
    let (mut reader, mut writer) = stream.split();
    let sent = AtomicU64::new(0);
    let mut write = pin!(write_request(&mut writer, head, payload, &sent));
    let mut written = false;
    let mut write_error = None;
    let mut answered = false;
    let mut interim = 0;
    loop {
        if let Some(head) = take_final_head(buf, names, &mut interim).map_err(Failure::Failed)? {
            return Ok((head, written));
        }
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            biased;
            result = &mut write, if !written && write_error.is_none() => {
                match result {
                    Ok(()) => written = true,
                    // The socket failed: an answer may be on its way all
                    // the same, or the end of the stream.
                    Err(WriteError::Socket(error)) => write_error = Some(error),
                    // The upstream waits for bytes that will never come.
                    Err(WriteError::Body(error)) => return Err(Failure::Failed(error)),
                }
                continue;
            }
            read = reader.read_buf(buf) => read,
        };
        let error = match read {
            Ok(0) => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before answering",
            ),
            Ok(_) => {
                answered = true;
                continue;
            }
            Err(error) => error,
        };
        return Err(if answered {
            Failure::Failed(error)
        } else {
            Failure::NoAnswer {
                error: write_error.unwrap_or(error),
                any_sent: sent.load(Ordering::Relaxed) > 0,
            }
        });
    }
}

/// Takes the final response head off the front of `buf`, once it is all
/// there, skipping interim (1xx) ones; `interim` counts those.
fn take_final_head(
    buf: &mut BytesMut,
    names: &mut KnownNames,
    interim: &mut usize,
) -> io::Result<Option<ResponseHead>> {
    while let Some(head) = parse_response_head(buf, names)? {
        if !head.status.is_informational() {
            return Ok(Some(head));
        }
        if head.status == StatusCode::SWITCHING_PROTOCOLS || *interim == MAX_INFORMATIONAL {
            return Err(invalid(
                "the upstream answered with an unexpected interim response",
            ));
        }
        *interim += 1;
    }
    Ok(None)
}

/// Why a request could not be written.
enum WriteError {
    /// The connection failed.
    Socket(io::Error),
    /// The client's body failed, or did not match its announced length.
    Body(io::Error),
}

async fn write_request(
    writer: &mut WriteHalf<'_>,
    head: &[u8],
    payload: Payload<'_>,
    sent: &AtomicU64,
) -> Result<(), WriteError> {
    write_counted(writer, head, sent).await?;
    match payload {
        Payload::Bytes(rest) => write_counted(writer, rest, sent).await,
        Payload::Stream(body, framing) => write_stream(writer, body, framing, sent).await,
    }
}

/// Writes all of `data`, counting in `sent` every byte the socket took:
/// whether any did decides if a failed request may be sent again.
async fn write_counted(
    writer: &mut WriteHalf<'_>,
    mut data: &[u8],
    sent: &AtomicU64,
) -> Result<(), WriteError> {
    while !data.is_empty() {
        let n = writer.write(data).await.map_err(WriteError::Socket)?;
        if n == 0 {
            return Err(WriteError::Socket(io::ErrorKind::WriteZero.into()));
        }
        sent.fetch_add(n as u64, Ordering::Relaxed);
        data = &data[n..];
    }
    Ok(())
}

/// Streams `body` as `framing` announced it; a body that turns out longer
/// or shorter than announced fails the exchange (and closes the
/// connection) rather than desynchronizing it.
async fn write_stream(
    writer: &mut WriteHalf<'_>,
    mut body: Body,
    framing: RequestFraming,
    sent: &AtomicU64,
) -> Result<(), WriteError> {
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            WriteError::Body(io::Error::other(format!(
                "the request body failed: {error}"
            )))
        })?;
        // Trailers are not forwarded.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        length += data.len() as u64;
        match framing {
            RequestFraming::Chunked => {
                let mut chunk = Vec::with_capacity(CHUNK_HEAD + data.len() + 2);
                chunk.extend_from_slice(chunk_head(data.len(), &mut [0; CHUNK_HEAD]));
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                write_counted(writer, &chunk, sent).await?;
            }
            RequestFraming::Length(announced) if length <= announced => {
                write_counted(writer, &data, sent).await?;
            }
            _ => {
                return Err(WriteError::Body(invalid(
                    "the request body is longer than announced",
                )))
            }
        }
    }
    match framing {
        RequestFraming::Chunked => write_counted(writer, b"0\r\n\r\n", sent).await,
        RequestFraming::Length(announced) if length != announced => Err(WriteError::Body(invalid(
            "the request body is shorter than announced",
        ))),
        _ => Ok(()),
    }
}
