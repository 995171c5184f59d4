//! HTTP/1.1 wire format read one way on both sides of the gateway: the
//! requests its server takes from clients and the responses its upstream
//! transport takes from Wix. Heads are parsed with httparse, bodies are
//! delimited strictly (RFC 9112 §6), and anything ambiguous is an error,
//! never a guess.

pub(crate) mod body;
pub(crate) mod chunked;

use std::io;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Version};

use crate::header_list;

/// Most bytes a message head may take.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most header fields a message head may carry.
pub(crate) const MAX_HEADERS: usize = 100;

/// What a read asks the socket for at least.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Where one header field sits in the buffer it was parsed from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: usize,
    len: usize,
}

impl Span {
    /// Where `part`, a slice of `buf`, sits in it.
    pub(crate) fn of(buf: &[u8], part: &[u8]) -> Self {
        Self {
            start: part.as_ptr() as usize - buf.as_ptr() as usize,
            len: part.len(),
        }
    }

    /// This span of `head`, sharing its memory.
    pub(crate) fn slice(self, head: &Bytes) -> Bytes {
        head.slice(self.range())
    }

    /// This span of `buf`, borrowed.
    pub(crate) fn of_bytes(self, buf: &[u8]) -> &[u8] {
        &buf[self.range()]
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }
}

/// Where each field of a parsed head sits in `buf`, so that the head can be
/// split off the buffer once httparse has let go of it. Inline for the
/// usual head: it lives only until the header map is built.
pub(crate) type FieldSpans = smallvec::SmallVec<[(Span, Span); 24]>;

/// Fills `spans`, empty, with where each of `headers` sits in `buf`. Filled
/// in place: returned, the spans would be copied whole (most of a KiB).
pub(crate) fn field_spans(buf: &[u8], headers: &[httparse::Header<'_>], spans: &mut FieldSpans) {
    debug_assert!(spans.is_empty());
    spans.extend(headers.iter().map(|field| {
        (
            Span::of(buf, field.name.as_bytes()),
            Span::of(buf, field.value),
        )
    }));
}

/// A header field that httparse let through but `http` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidField;

/// Which of the fields that frame a message or its connection a head
/// carries, noted while its header map is built: a head without them (the
/// usual GET, the usual answer) then costs no hashed lookup for each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Present {
    pub transfer_encoding: bool,
    pub content_length: bool,
    pub connection: bool,
    pub expect: bool,
}

/// The header names a connection's messages used, as they were spelled,
/// so that the next message's names are matched by comparing bytes instead
/// of being parsed, and a name `http` does not know is not allocated again
/// for every message: a peer sends the same fields, in the same order,
/// each time. Worth keeping where a connection carries many messages (a
/// pooled upstream connection).
#[derive(Debug, Default)]
pub(crate) struct KnownNames {
    /// Each name, and where its spelling sits in `spellings`.
    names: Vec<(HeaderName, Span)>,
    spellings: Vec<u8>,
    /// Where the next name most likely is: after the last one found.
    next: usize,
}

impl KnownNames {
    /// Most names kept, and the longest kept: what a connection holds
    /// stays small whatever its peer sends.
    const MAX_NAMES: usize = 32;
    const MAX_LEN: usize = 64;

    /// The header name `raw` spells.
    pub(crate) fn name(&mut self, raw: &[u8]) -> Result<HeaderName, InvalidField> {
        let spellings = &self.spellings;
        let spelled = |(_, at): &(HeaderName, Span)| at.of_bytes(spellings) == raw;
        let found = match self.names.get(self.next) {
            Some(entry) if spelled(entry) => Some(self.next),
            _ => self.names.iter().position(spelled),
        };
        if let Some(at) = found {
            self.next = at + 1;
            return Ok(self.names[at].0.clone());
        }
        let name = HeaderName::from_bytes(raw).map_err(|_| InvalidField)?;
        if self.names.len() < Self::MAX_NAMES && raw.len() <= Self::MAX_LEN {
            let at = Span {
                start: self.spellings.len(),
                len: raw.len(),
            };
            self.spellings.extend_from_slice(raw);
            self.names.push((name.clone(), at));
            self.next = self.names.len();
        }
        Ok(name)
    }
}

/// The header map of `head`, its values sharing the head's memory rather
/// than being copied one by one, with room for `extra` fields more, and
/// which framing fields it has. Names come through `names` where the
/// connection keeps them. Credentials are marked sensitive, so that they
/// never show in a `Debug` print of the message.
pub(crate) fn header_map(
    head: &Bytes,
    spans: &[(Span, Span)],
    extra: usize,
    mut names: Option<&mut KnownNames>,
) -> Result<(HeaderMap, Present), InvalidField> {
    let mut headers = HeaderMap::with_capacity(spans.len() + extra);
    let mut present = Present::default();
    for &(name, value) in spans {
        let raw = name.of_bytes(head);
        let name = match names.as_deref_mut() {
            Some(names) => names.name(raw)?,
            None => HeaderName::from_bytes(raw).map_err(|_| InvalidField)?,
        };
        let mut value =
            HeaderValue::from_maybe_shared(value.slice(head)).map_err(|_| InvalidField)?;
        if name == header::TRANSFER_ENCODING {
            present.transfer_encoding = true;
        } else if name == header::CONTENT_LENGTH {
            present.content_length = true;
        } else if name == header::CONNECTION {
            present.connection = true;
        } else if name == header::EXPECT {
            present.expect = true;
        } else if name == header::AUTHORIZATION
            || name == header::PROXY_AUTHORIZATION
            || name == header::COOKIE
        {
            value.set_sensitive(true);
        }
        headers.append(name, value);
    }
    Ok((headers, present))
}

/// The one length every `Content-Length` value states, if any does; `Err`
/// when they disagree or one is not a plain decimal number.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, InvalidField> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            let parsed =
                (!item.is_empty() && item.len() <= 18 && item.iter().all(u8::is_ascii_digit))
                    .then(|| item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')));
            match (parsed, length) {
                (Some(parsed), None) => length = Some(parsed),
                (Some(parsed), Some(seen)) if parsed == seen => {}
                _ => return Err(InvalidField),
            }
        }
    }
    Ok(length)
}

/// Whether the message's `Transfer-Encoding` is exactly `chunked`, once.
/// Any other coding would hand the body on in a form its reader is never
/// told about.
pub(crate) fn is_plain_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    let chunked = codings
        .next()
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("chunked"));
    chunked && codings.next().is_none()
}

/// Whether a message of `version` with `headers` (which have the fields
/// `present` says) lets its connection carry another message after it.
pub(crate) fn keeps_alive(version: Version, headers: &HeaderMap, present: Present) -> bool {
    if !present.connection {
        return version == Version::HTTP_11;
    }
    let has = |token| header_list::lists(headers, header::CONNECTION, token);
    match version {
        Version::HTTP_11 => !has("close"),
        Version::HTTP_10 => has("keep-alive") && !has("close"),
        _ => false,
    }
}

/// An error for bytes that break the protocol.
pub(crate) fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::header_list::map_of as headers;

    #[test]
    fn content_length_must_state_one_plain_number() {
        let length = |pairs: &[(&'static str, &'static str)]| content_length(&headers(pairs));
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&[("content-length", "5")]), Ok(Some(5)));
        assert_eq!(
            length(&[("content-length", "5, 5"), ("content-length", "5")]),
            Ok(Some(5))
        );
        for bad in ["5, 6", "-1", "+5", "0x5", "", "5 5", "99999999999999999999"] {
            assert_eq!(
                length(&[("content-length", bad)]),
                Err(InvalidField),
                "{bad:?}"
            );
        }
        assert_eq!(
            length(&[("content-length", "5"), ("content-length", "6")]),
            Err(InvalidField)
        );
    }

    #[test]
    fn known_names_are_the_names_http_parses() {
        let mut names = KnownNames::default();
        let long = "x".repeat(KnownNames::MAX_LEN + 1);
        let wire = [
            "content-type",
            "x-Custom",
            "Content-Type",
            "x-custom",
            long.as_str(),
            long.as_str(),
        ];
        // Twice over: the second round finds every kept name.
        for raw in wire.iter().chain(&wire) {
            let expected = HeaderName::from_bytes(raw.as_bytes()).unwrap();
            assert_eq!(names.name(raw.as_bytes()), Ok(expected), "{raw}");
        }
        assert_eq!(
            names.names.len(),
            4,
            "one entry per spelling, none too long"
        );
        // Out of order: the hint points at `x-Custom`, the scan finds the
        // other spelling.
        assert_eq!(names.name(b"content-type"), Ok(header::CONTENT_TYPE));
        assert_eq!(names.name(b"x-custom").unwrap().as_str(), "x-custom");
        assert_eq!(names.names.len(), 4);
        for bad in ["", "a b", "a:b", "é"] {
            assert_eq!(names.name(bad.as_bytes()), Err(InvalidField), "{bad:?}");
        }
        for i in 0..2 * KnownNames::MAX_NAMES {
            let raw = format!("x-{i}");
            assert_eq!(names.name(raw.as_bytes()).unwrap().as_str(), raw);
        }
        assert_eq!(names.names.len(), KnownNames::MAX_NAMES);
    }

    #[test]
    fn only_a_single_plain_chunked_coding_is_understood() {
        let chunked = |pairs: &[(&'static str, &'static str)]| is_plain_chunked(&headers(pairs));
        assert!(chunked(&[("transfer-encoding", "chunked")]));
        assert!(chunked(&[("transfer-encoding", " Chunked ")]));
        assert!(!chunked(&[("transfer-encoding", "gzip, chunked")]));
        assert!(!chunked(&[("transfer-encoding", "chunked, chunked")]));
        assert!(!chunked(&[
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked")
        ]));
        assert!(!chunked(&[("transfer-encoding", "identity")]));
    }
}
