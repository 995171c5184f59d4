//! A client's request head, read strictly: one way to delimit its body or
//! none (RFC 9112 §6.3), so that the gateway and whatever it forwards to can
//! never disagree about where a request ends.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::{header, request::Parts, Method, Request, Uri, Version};

use crate::{
    error::GatewayError,
    http1::{
        content_length, field_spans, header_map, is_plain_chunked, keeps_alive, FieldSpans, Span,
        MAX_HEAD, MAX_HEADERS,
    },
};

/// How the request body follows the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed request head and what the connection needs to know of it.
#[derive(Debug)]
pub(super) struct Head {
    pub parts: Parts,
    pub framing: Framing,
    /// Whether the client lets the connection carry another request.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expects_continue: bool,
}

/// Takes one complete request head off the front of `buf`; `Ok(None)` until
/// all of it has arrived. Header values share the buffer's memory.
pub(super) fn parse(buf: &mut BytesMut) -> Result<Option<Head>, GatewayError> {
    // Left uninitialized: zeroing room for every header a request may have
    // costs more than parsing the few it has.
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut raw,
    );
    let length = match parsed {
        // httparse takes a bare LF for a line end; a proxy in front may not,
        // and read the head differently.
        Ok(httparse::Status::Complete(length)) if has_bare_lf(&buf[..length]) => {
            return Err(malformed("the request head has a line not ended by CRLF"))
        }
        Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD => length,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(GatewayError::HeadTooLarge),
        Err(_) => return Err(malformed("the request head is malformed")),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(malformed("the request head is malformed"));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| malformed("the request method is invalid"))?;
    if method == Method::CONNECT {
        return Err(malformed("CONNECT is not supported"));
    }
    let version = if version == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let target = Span::of(buf, target.as_bytes());
    let mut spans = FieldSpans::new();
    field_spans(buf, request.headers, &mut spans);
    let head = buf.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(target.slice(&head))
        .map_err(|_| malformed("the request target is invalid"))?;
    let (headers, present) = header_map(&head, &spans, 0, None)
        .map_err(|_| malformed("a request header field is invalid"))?;

    let framing = if present.transfer_encoding {
        // A length next to a coding is how requests are smuggled past a
        // proxy that reads one and a server that reads the other.
        if version != Version::HTTP_11 || present.content_length {
            return Err(malformed("the request body is framed ambiguously"));
        }
        if !is_plain_chunked(&headers) {
            return Err(malformed("the request's transfer coding is not supported"));
        }
        Framing::Chunked
    } else if present.content_length {
        match content_length(&headers) {
            Ok(None | Some(0)) => Framing::Empty,
            Ok(Some(length)) => Framing::Length(length),
            Err(_) => return Err(malformed("the request's Content-Length is invalid")),
        }
    } else {
        Framing::Empty
    };
    let keep_alive = keeps_alive(version, &headers, present);
    let expects_continue = version == Version::HTTP_11
        && framing != Framing::Empty
        && present.expect
        && headers
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        framing,
        keep_alive,
        expects_continue,
    }))
}

/// Whether any LF in `head` lacks the CR before it.
fn has_bare_lf(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|at| at == 0 || head[at - 1] != b'\r')
}

fn malformed(message: &'static str) -> GatewayError {
    GatewayError::BadRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Option<Head>, GatewayError> {
        parse(&mut BytesMut::from(text))
    }

    /// The framing of a whole head, or why it is refused.
    fn framing(text: &str) -> Result<Framing, &'static str> {
        let head = parse_text(text).map_err(|error| error.reason())?;
        Ok(head.expect("a complete head").framing)
    }

    #[test]
    fn a_head_is_taken_off_the_buffer_and_the_body_stays() {
        let mut buf = BytesMut::from(
            "\r\nPOST /v1/items?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\nokGET",
        );
        let head = parse(&mut buf).unwrap().unwrap();
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/v1/items?a=1");
        assert_eq!(head.parts.version, Version::HTTP_11);
        let values: Vec<_> = head.parts.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(head.framing, Framing::Length(2));
        let with_token = parse_text("GET / HTTP/1.1\r\nAuthorization: secret-token\r\n\r\n");
        let printed = format!("{:?}", with_token.unwrap().unwrap());
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(head.keep_alive);
        assert!(!head.expects_continue);
        assert_eq!(&buf[..], b"okGET");
    }

    #[test]
    fn an_incomplete_head_waits() {
        assert!(parse_text("GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        assert!(parse_text("GET /").unwrap().is_none());
        assert!(parse_text("").unwrap().is_none());
    }

    #[test]
    fn broken_heads_are_refused() {
        for broken in [
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nName : x\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\nX: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\n\r\n",
            "\nGET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n\n",
            "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_text(broken), Err(GatewayError::BadRequest(_))),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn oversized_heads_are_refused_as_such() {
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD + 1));
        assert!(matches!(
            parse_text(&endless),
            Err(GatewayError::HeadTooLarge)
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(
            parse_text(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Err(GatewayError::HeadTooLarge)
        ));
    }

    #[test]
    fn bodies_are_delimited_one_way_only() {
        assert_eq!(framing("GET / HTTP/1.1\r\n\r\n"), Ok(Framing::Empty));
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        for ambiguous in [
            "POST / HTTP/1.1\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 7, 8\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -7\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x7\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(framing(ambiguous), Err("bad_request"), "{ambiguous:?}");
        }
    }

    #[test]
    fn keep_alive_and_expectations_follow_the_version() {
        let head = |text| parse_text(text).unwrap().unwrap();
        assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        let expecting = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        assert!(head(expecting).expects_continue);
        let no_body = "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
        assert!(!head(no_body).expects_continue);
    }

    /// Heads mutated at random (bytes flipped, inserted, dropped, fields
    /// repeated) never panic the parser, and whatever it accepts is framed
    /// exactly as its fields say: no body length is ever taken from a
    /// field the parser did not check.
    #[test]
    fn mutated_heads_parse_to_framing_their_fields_support() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let seeds: [&[u8]; 4] = [
            b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        ];
        let alphabet =
            b"\r\n :,;0123456789abcdefABCDEF-chunkedContent-LengthTransfer-Encoding\t\x00\x7f\xff";
        let mut rng = StdRng::seed_from_u64(0x5eed);
        // How many accepted heads each framing had: the run must test all.
        let mut accepted = [0; 3];
        for _ in 0..20_000 {
            let mut text = seeds[rng.random_range(0..seeds.len())].to_vec();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..text.len());
                match rng.random_range(0..4) {
                    0 => text[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => text.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    2 => {
                        text.remove(at);
                    }
                    _ => {
                        let line: &[u8] = [
                            &b"Content-Length: 7\r\n"[..],
                            b"Transfer-Encoding: chunked\r\n",
                            b"Content-Length: 12\r\n",
                        ][rng.random_range(0..3)];
                        if let Some(end) = memchr::memmem::find(&text, b"\r\n") {
                            let at = end + 2;
                            text.splice(at..at, line.iter().copied());
                        }
                    }
                }
            }
            let mut buf = BytesMut::from(&text[..]);
            let Ok(Some(head)) = parse(&mut buf) else {
                continue;
            };
            let headers = &head.parts.headers;
            let lengths: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
            let codings: Vec<_> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
            let shown = String::from_utf8_lossy(&text).into_owned();
            // Each `Content-Length` field as the number it states.
            let stated: Vec<u64> = lengths
                .iter()
                .flat_map(|value| value.to_str().unwrap().split(','))
                .map(|item| item.trim().parse().unwrap())
                .collect();
            accepted[match head.framing {
                Framing::Empty => 0,
                Framing::Length(_) => 1,
                Framing::Chunked => 2,
            }] += 1;
            match head.framing {
                Framing::Chunked => {
                    assert!(lengths.is_empty(), "{shown:?}");
                    assert_eq!(codings.len(), 1, "{shown:?}");
                    assert_eq!(head.parts.version, Version::HTTP_11, "{shown:?}");
                }
                Framing::Length(n) => {
                    assert!(codings.is_empty(), "{shown:?}");
                    assert!(stated.iter().all(|&m| m == n), "{shown:?}");
                }
                Framing::Empty => {
                    assert!(codings.is_empty(), "{shown:?}");
                    assert!(stated.iter().all(|&m| m == 0), "{shown:?}");
                }
            }
            // What is left is what followed the head, untouched.
            let consumed = text.len() - buf.len();
            assert!(text[..consumed].ends_with(b"\r\n\r\n"), "{shown:?}");
        }
        assert!(accepted.iter().all(|&n| n > 200), "{accepted:?}");
    }
}
