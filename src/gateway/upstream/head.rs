//! HTTP/1.1 message heads on the upstream side: the request head the
//! gateway writes, the response head it reads, and how that response's body
//! is delimited (RFC 9112 §6.3). Anything ambiguous about the framing is an
//! error, never a guess: the answer is a 502 and the connection is closed.

use std::{
    io::{self, Write as _},
    mem::MaybeUninit,
};

use bytes::BytesMut;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::http1::{
    content_length, field_spans, header_map, invalid, is_plain_chunked, keeps_alive, FieldSpans,
    KnownNames, Present, MAX_HEAD, MAX_HEADERS,
};

/// How the request body follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RequestFraming {
    /// No body, and none announced (a GET, HEAD, DELETE or OPTIONS).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: a stream of unknown length.
    Chunked,
}

/// Appends the request head to `out`. `path` is the canonical path and
/// query, already encoded; the framing headers come from `framing` alone,
/// never from `headers`.
pub(super) fn write_request_head<'h>(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    host: &HeaderValue,
    headers: impl IntoIterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    framing: RequestFraming,
) {
    debug_assert!(path.starts_with('/') && !path.bytes().any(|b| b <= b' '));
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        // The configuration refuses these in `forward_headers` already;
        // the framing of what is written is this module's alone.
        if is_framing(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(length) => {
            let _ = write!(out, "content-length: {length}\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

fn is_framing(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
}

/// A response head as read.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    /// Which framing fields `headers` had as parsed.
    pub present: Present,
}

/// Takes one complete response head off the front of `buf`; `Ok(None)`
/// until all of it has arrived. Header values share the buffer's memory
/// rather than being copied one by one.
pub(super) fn parse_response_head(
    buf: &mut BytesMut,
    names: &mut KnownNames,
) -> io::Result<Option<ResponseHead>> {
    // Left uninitialized: zeroing room for every header a response may have
    // cost more than parsing the few it has.
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut raw,
    );
    let length = match parsed {
        Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD => length,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(_) => return Err(invalid("the upstream response head is too large")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(invalid("the upstream response has too many headers"))
        }
        Err(_) => return Err(invalid("the upstream response head is malformed")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| invalid("the upstream response status is invalid"))?;
    let version = match response.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut spans = FieldSpans::new();
    field_spans(buf, response.headers, &mut spans);
    let head = buf.split_to(length).freeze();
    // Room for what the gateway adds to an answer (its request id, CORS)
    // without growing the map.
    let (headers, present) = header_map(&head, &spans, 4, Some(names))
        .map_err(|_| invalid("the upstream response has an invalid header field"))?;
    Ok(Some(ResponseHead {
        status,
        version,
        headers,
        present,
    }))
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A response's framing, and whether its connection can serve another
/// request afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Framing {
    pub body: BodyFraming,
    pub reusable: bool,
}

/// The framing of a final (non-1xx) response to a `method` request, per
/// RFC 9112 §6.3. A `Content-Length` that a chunked coding overrides is
/// removed, and the connection is not reused after such a message.
pub(super) fn response_framing(method: &Method, head: &mut ResponseHead) -> io::Result<Framing> {
    let mut reusable =
        head.version == Version::HTTP_11 && keeps_alive(head.version, &head.headers, head.present);
    let status = head.status.as_u16();
    if method == Method::HEAD || status == 204 || status == 304 {
        return Ok(Framing {
            body: BodyFraming::Empty,
            reusable,
        });
    }
    if head.present.transfer_encoding {
        if !is_plain_chunked(&head.headers) || head.version != Version::HTTP_11 {
            return Err(invalid(
                "the upstream response has a transfer coding other than chunked",
            ));
        }
        if head.present.content_length {
            head.headers.remove(header::CONTENT_LENGTH);
            reusable = false;
        }
        return Ok(Framing {
            body: BodyFraming::Chunked,
            reusable,
        });
    }
    let length = if head.present.content_length {
        content_length(&head.headers)
            .map_err(|_| invalid("the upstream response has an invalid Content-Length"))?
    } else {
        None
    };
    Ok(match length {
        Some(length) => Framing {
            body: BodyFraming::Length(length),
            reusable,
        },
        None => Framing {
            body: BodyFraming::UntilClose,
            reusable: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> io::Result<Option<ResponseHead>> {
        parse_response_head(&mut BytesMut::from(text), &mut KnownNames::default())
    }

    fn framing_of(method: Method, text: &str) -> io::Result<Framing> {
        let mut head = parse(text)?.expect("a complete head");
        response_framing(&method, &mut head)
    }

    fn framing(body: BodyFraming, reusable: bool) -> Framing {
        Framing { body, reusable }
    }

    #[test]
    fn a_head_is_taken_off_the_buffer_with_its_fields() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Wix-Request-Id: abc\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nok",
        );
        let head = parse_response_head(&mut buf, &mut KnownNames::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers["x-wix-request-id"], "abc");
        let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a", "b"]);
        assert_eq!(&buf[..], b"ok", "the body stays in the buffer");
    }

    #[test]
    fn an_incomplete_head_waits_and_a_broken_one_fails() {
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        assert!(parse("HTTP/1.1 200 OK\r\n").unwrap().is_none());
        for broken in [
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            "SMTP 200 OK\r\n\r\n",
        ] {
            assert!(parse(broken).is_err(), "{broken:?}");
        }
        let endless = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD + 1));
        assert!(parse(&endless).is_err());
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).is_err());
    }

    #[test]
    fn bodies_are_delimited_as_rfc_9112_says() {
        use BodyFraming::*;
        let get = || Method::GET;
        assert_eq!(
            framing_of(get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap(),
            framing(Length(5), true)
        );
        assert_eq!(
            framing_of(
                get(),
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"
            )
            .unwrap(),
            framing(Length(5), true)
        );
        assert_eq!(
            framing_of(
                get(),
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .unwrap(),
            framing(Chunked, true)
        );
        assert_eq!(
            framing_of(get(), "HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            framing(UntilClose, false)
        );
        assert_eq!(
            framing_of(
                get(),
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
            )
            .unwrap(),
            framing(Empty, true)
        );
        assert_eq!(
            framing_of(get(), "HTTP/1.1 304 Not Modified\r\n\r\n").unwrap(),
            framing(Empty, true)
        );
        assert_eq!(
            framing_of(Method::HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap(),
            framing(Empty, true)
        );
        assert_eq!(
            framing_of(
                get(),
                "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n"
            )
            .unwrap(),
            framing(Length(1), false)
        );
        assert_eq!(
            framing_of(get(), "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap(),
            framing(Length(1), false)
        );
    }

    #[test]
    fn chunked_overrides_a_length_and_the_connection_ends_after() {
        let mut head =
            parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            response_framing(&Method::GET, &mut head).unwrap(),
            framing(BodyFraming::Chunked, false)
        );
        assert!(!head.headers.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(framing_of(Method::GET, text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn the_request_head_is_framed_by_the_gateway_alone() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert("content-length", HeaderValue::from_static("999"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("host", HeaderValue::from_static("evil.example"));
        let host = HeaderValue::from_static("www.wixapis.com");
        let mut out = Vec::new();
        let path = "/members/v1/members/m1?fieldsets=FULL";
        write_request_head(
            &mut out,
            &Method::POST,
            path,
            &host,
            &headers,
            RequestFraming::Length(12),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /members/v1/members/m1?fieldsets=FULL HTTP/1.1\r\nhost: www.wixapis.com\r\n\
             accept: application/json\r\ncontent-length: 12\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::GET,
            "/",
            &host,
            &HeaderMap::new(),
            RequestFraming::None,
        );
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: www.wixapis.com\r\n\r\n");
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::PUT,
            "/",
            &host,
            &HeaderMap::new(),
            RequestFraming::Chunked,
        );
        assert!(out.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
    }
}
