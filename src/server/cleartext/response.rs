//! Writing a response to an HTTP/1 client: the head, then the body framed
//! by the server alone (never by headers the handler left in), written
//! with as few system calls as the body allows.

use std::{
    cell::RefCell,
    future::poll_fn,
    io::{self, IoSlice},
    pin::Pin,
    task::Poll,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{header, response::Parts, HeaderName, Method, Response, StatusCode, Version};
use hyper::body::Body as _;
use tokio::net::TcpStream;

use crate::{
    body::Body,
    error::{new_request_id, GatewayError},
    http1::chunked::{chunk_head, CHUNK_HEAD},
};

/// Body data up to this size is copied next to the head (or the previous
/// piece) so that both leave in one system call.
const COALESCE: usize = 16 * 1024;

/// What the server adds to a head beyond the handler's fields: status
/// line, date, framing, connection, with room to spare.
const HEAD_EXTRA: usize = 160;

/// How the body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body may follow (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, a body of unknown
    /// length).
    UntilClose,
}

/// What the response is written for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Exchange<'a> {
    pub method: &'a Method,
    /// The request's version: an HTTP/1.0 client gets no chunked coding.
    pub version: Version,
    /// Whether the connection is to carry another request afterwards.
    pub keep_alive: bool,
    /// How long one write may wait for the client to make room.
    pub write_timeout: Duration,
    /// Bytes that must go out before the answer (the rest of an interim
    /// answer).
    pub prefix: &'static [u8],
}

/// Writes `response` to `stream`. Returns whether the connection may carry
/// another request: the exchange allowed it and the body was written whole
/// with its framing.
pub(super) async fn write(
    stream: &TcpStream,
    response: Response<Body>,
    exchange: Exchange<'_>,
) -> io::Result<bool> {
    // The client would take an interim status for the start of an answer
    // still to come, and pair the next answer with this request.
    let response = if response.status().is_informational() {
        tracing::warn!(status = %response.status(), "a handler answered with an interim status");
        GatewayError::BadGateway.to_response(new_request_id().to_str().unwrap_or_default())
    } else {
        response
    };
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let framing = if exchange.method == Method::HEAD || status == 204 || status == 304 {
        Framing::None
    } else if let Some(length) = body.size_hint().exact() {
        Framing::Length(length)
    } else if exchange.version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        Framing::UntilClose
    };
    let keep_alive = exchange.keep_alive && framing != Framing::UntilClose;
    // Room for the head and a body small enough to join it, so that the
    // buffer is allocated once and never grows.
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let joined = match framing {
        Framing::Length(length) if length <= COALESCE as u64 => length as usize,
        _ => 0,
    };
    let mut out = Vec::with_capacity(exchange.prefix.len() + HEAD_EXTRA + fields + joined);
    out.extend_from_slice(exchange.prefix);
    write_head(&mut out, &parts, framing, exchange.version, keep_alive);
    if framing == Framing::None {
        drop(body);
        send(stream, &mut [IoSlice::new(&out)], exchange.write_timeout).await?;
        return Ok(keep_alive);
    }

    let mut written = 0u64;
    loop {
        // Whatever the body has ready joins what is waiting to be written;
        // only when it has nothing ready is the waiting part sent.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !out.is_empty() {
                    send(stream, &mut [IoSlice::new(&out)], exchange.write_timeout).await?;
                    out.clear();
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers are not sent.
                Err(_) => continue,
            },
            Some(Err(error)) => {
                tracing::debug!(%error, "the response body failed");
                return Err(io::Error::other("the response body failed"));
            }
        };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        if let Framing::Length(length) = framing {
            if written > length {
                return Err(io::Error::other(
                    "the response body is longer than announced",
                ));
            }
        }
        append_data(stream, &mut out, framing, data, exchange.write_timeout).await?;
    }
    match framing {
        Framing::Length(length) if written != length => {
            return Err(io::Error::other(
                "the response body is shorter than announced",
            ))
        }
        Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        _ => {}
    }
    if !out.is_empty() {
        send(stream, &mut [IoSlice::new(&out)], exchange.write_timeout).await?;
    }
    Ok(keep_alive)
}

/// Adds one piece of body data, framed, to what is waiting in `out`: copied
/// when small, written out together with `out` when not.
async fn append_data(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    framing: Framing,
    data: Bytes,
    write_timeout: Duration,
) -> io::Result<()> {
    if framing == Framing::Chunked {
        out.extend_from_slice(chunk_head(data.len(), &mut [0; CHUNK_HEAD]));
    }
    let end: &[u8] = if framing == Framing::Chunked {
        b"\r\n"
    } else {
        b""
    };
    if out.len() + data.len() <= COALESCE {
        out.extend_from_slice(&data);
        out.extend_from_slice(end);
        return Ok(());
    }
    let mut slices = [IoSlice::new(out), IoSlice::new(&data), IoSlice::new(end)];
    send(stream, &mut slices, write_timeout).await?;
    out.clear();
    Ok(())
}

/// Header fields the server writes itself from the framing it chose, or
/// that describe only the hop the handler's answer came over.
fn is_framing(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_LENGTH
        || name == "keep-alive"
}

fn write_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    framing: Framing,
    version: Version,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // The length of a body a HEAD or 304 answer leaves out is the
        // handler's to state.
        let described = framing == Framing::None
            && name == header::CONTENT_LENGTH
            && parts.status != StatusCode::NO_CONTENT;
        if is_framing(name) && !described {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        append_date(out);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(length) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
    match (keep_alive, version) {
        (false, Version::HTTP_11) => out.extend_from_slice(b"connection: close\r\n"),
        (true, Version::HTTP_10) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the current time as an HTTP date, formatted once per second.
fn append_date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = crate::clock::wall();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with_borrow_mut(|(cached_second, text)| {
        if *cached_second != second || text.is_empty() {
            *cached_second = second;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// Writes all of `slices`; a client that takes nothing for `timeout` is
/// given up on.
async fn send(stream: &TcpStream, slices: &mut [IoSlice<'_>], timeout: Duration) -> io::Result<()> {
    let mut slices = slices;
    // Empty slices go first, so that a write of nothing means a closed
    // socket, not an empty one.
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match stream.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::timeout(timeout, stream.writable())
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")
                    })??;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
