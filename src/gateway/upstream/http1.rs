//! The transport to a cleartext upstream: HTTP/1.1 over pooled keep-alive
//! connections, driven by the request's own task. A general client hands
//! each request to a connection task and back (two wake-ups and a channel
//! per request) and checks out of a pool keyed by origin; an upstream here
//! is one fixed origin, so none of that is needed (bench/profile-notes.md).

use std::{io, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Version};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    body::{Remaining, ResponseBody},
    head::{
        invalid, parse_response_head, response_framing, write_request_head, BodyFraming,
        RequestFraming,
    },
    pool::{Conn, Pool, READ_CHUNK},
    Outgoing,
};
use crate::body::{self, Body, BoxError};

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
    NoAnswer { error: io::Error, written: bool },
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
            pool: Arc::new(Pool::new(MAX_IDLE, idle_timeout)),
        }
    }

    /// Sends one request and returns the response once its head has
    /// arrived; the body streams after.
    pub async fn send(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
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
        let mut head = Vec::with_capacity(512);
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
    /// that cannot do anything twice: it was never fully written, or its
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
                Err(Failure::NoAnswer { error, written }) if !written || method.is_idempotent() => {
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
        if let Err(error) = write_request(&mut conn.stream, head, payload).await {
            return Err(Failure::NoAnswer {
                error,
                written: false,
            });
        }
        let mut head = read_final_head(&mut conn).await?;
        let framing = response_framing(method, &mut head).map_err(Failure::Failed)?;

        let mut response = Response::new(body::empty());
        *response.status_mut() = head.status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = head.headers;
        let pool = &self.pool;
        *response.body_mut() = match framing.body {
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
                Remaining::Chunked(super::chunked::Chunked::new()),
                framing.reusable,
                pool,
            ),
            BodyFraming::UntilClose => streamed(conn, Remaining::UntilClose, false, pool),
        };
        Ok(response)
    }
}

fn streamed(conn: Conn, remaining: Remaining, reusable: bool, pool: &Arc<Pool>) -> Body {
    ResponseBody::new(conn, remaining, reusable, pool.clone())
        .map_err(BoxError::from)
        .boxed()
}

/// A request body to write after the head.
enum Payload<'a> {
    /// Whatever of an in-memory body was not written with the head.
    Bytes(&'a Bytes),
    /// A body streamed from the client, framed as announced.
    Stream(Body, RequestFraming),
}

async fn write_request(
    stream: &mut TcpStream,
    head: &[u8],
    payload: Payload<'_>,
) -> io::Result<()> {
    stream.write_all(head).await?;
    match payload {
        Payload::Bytes(rest) if rest.is_empty() => Ok(()),
        Payload::Bytes(rest) => stream.write_all(rest).await,
        Payload::Stream(body, framing) => write_stream(stream, body, framing).await,
    }
}

/// Streams `body` as `framing` announced it; a body that turns out longer
/// or shorter than announced fails the exchange (and closes the
/// connection) rather than desynchronizing it.
async fn write_stream(
    stream: &mut TcpStream,
    mut body: Body,
    framing: RequestFraming,
) -> io::Result<()> {
    let mut sent = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|error| io::Error::other(format!("the request body failed: {error}")))?;
        // Trailers are not forwarded.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        match framing {
            RequestFraming::Chunked => {
                let mut chunk = Vec::with_capacity(data.len() + 20);
                chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                stream.write_all(&chunk).await?;
            }
            RequestFraming::Length(length) if sent <= length => stream.write_all(&data).await?,
            _ => return Err(invalid("the request body is longer than announced")),
        }
    }
    match framing {
        RequestFraming::Chunked => stream.write_all(b"0\r\n\r\n").await,
        RequestFraming::Length(length) if sent != length => {
            Err(invalid("the request body is shorter than announced"))
        }
        _ => Ok(()),
    }
}

/// Reads up to the final response head, skipping interim (1xx) ones.
async fn read_final_head(conn: &mut Conn) -> Result<super::head::ResponseHead, Failure> {
    let mut answered = false;
    let mut informational = 0;
    loop {
        match parse_response_head(&mut conn.buf) {
            Ok(Some(head)) if head.status.is_informational() => {
                if head.status == StatusCode::SWITCHING_PROTOCOLS
                    || informational == MAX_INFORMATIONAL
                {
                    return Err(Failure::Failed(invalid(
                        "the upstream answered with an unexpected interim response",
                    )));
                }
                informational += 1;
                continue;
            }
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(error) => return Err(Failure::Failed(error)),
        }
        conn.buf.reserve(READ_CHUNK);
        let read = conn.stream.read_buf(&mut conn.buf).await;
        match read {
            Ok(0) => {
                let error = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection before answering",
                );
                return Err(if answered {
                    Failure::Failed(error)
                } else {
                    Failure::NoAnswer {
                        error,
                        written: true,
                    }
                });
            }
            Ok(_) => answered = true,
            Err(error) if !answered => {
                return Err(Failure::NoAnswer {
                    error,
                    written: true,
                })
            }
            Err(error) => return Err(Failure::Failed(error)),
        }
    }
}
