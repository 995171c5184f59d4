//! The canonicalize phase: one unambiguous form of method, path and query.
//!
//! Anything a server behind the gateway might read differently from the
//! gateway is rejected, never repaired: encoded slashes and backslashes, NUL
//! and control bytes, dot segments (raw or encoded), empty segments, invalid
//! percent escapes or UTF-8. What is left is decoded once for matching and
//! re-encoded once for forwarding, so the path that is matched is exactly the
//! path that is forwarded.

use std::borrow::Cow;

use http::{header, HeaderMap, Method, Uri};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{error::GatewayError, policy::QueryPair};

/// A request line in canonical form. Segments and query pairs with nothing
/// to decode borrow the request's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest<'a> {
    /// The method; only the ones Wix APIs use are accepted.
    pub method: Method,
    /// Decoded path segments, as the policy matches them.
    pub segments: Vec<Cow<'a, str>>,
    /// Decoded query pairs, in order, as the policy reads them.
    pub query: Vec<QueryPair<'a>>,
}

/// Bytes kept literally in a forwarded path segment. Everything else,
/// including `;` (a path-parameter delimiter for some servers), is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b':')
    .remove(b'@');

/// Bytes kept literally in a forwarded query key or value.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The bytes [`SEGMENT`] and [`QUERY`] keep, as tables: a value that
/// needs no encoding (almost every one) is then checked in one pass of
/// lookups and copied whole, not fed through the encoder byte by byte.
const SEGMENT_LITERAL: [bool; 256] = literal_table(b"-._~!$'()*,:@");
const QUERY_LITERAL: [bool; 256] = literal_table(b"-._~");

/// ASCII letters and digits, and `others`.
const fn literal_table(others: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
}

/// Appends `text` percent-encoded by `set`, whose literal bytes `literal`
/// lists.
fn push_encoded(out: &mut String, text: &str, set: &'static AsciiSet, literal: &[bool; 256]) {
    // No early exit: the usual value is short and all literal.
    if text
        .bytes()
        .fold(true, |plain, b| plain & literal[usize::from(b)])
    {
        out.push_str(text);
    } else {
        out.extend(utf8_percent_encode(text, set));
    }
}

impl<'a> CanonicalRequest<'a> {
    /// Canonicalizes a request line, checking the headers that could make it
    /// mean two things.
    pub fn parse(method: &Method, uri: &'a Uri, headers: &HeaderMap) -> Result<Self, GatewayError> {
        check_headers(headers)?;
        let method = match *method {
            Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::OPTIONS => method.clone(),
            _ => return Err(GatewayError::BadRequest("unsupported method")),
        };
        let path = uri.path();
        let Some(path) = path.strip_prefix('/') else {
            return Err(GatewayError::BadRequest("the path must start with /"));
        };
        let segments = if path.is_empty() {
            Vec::new()
        } else {
            split_ascii(path, b'/')
                .map(decode_segment)
                .collect::<Result<_, _>>()?
        };
        let query = match uri.query() {
            None => Vec::new(),
            Some(query) => parse_query(query)?,
        };
        Ok(Self {
            method,
            segments,
            query,
        })
    }

    /// The path as forwarded: each decoded segment encoded one fixed way.
    pub fn path(&self) -> String {
        // Room for the usual path, which encodes to itself: one allocation.
        let plain: usize = self.segments.iter().map(|segment| segment.len() + 1).sum();
        let mut out = String::with_capacity(plain.max(1));
        for segment in &self.segments {
            out.push('/');
            push_encoded(&mut out, segment, SEGMENT, &SEGMENT_LITERAL);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The path and query as forwarded, without the pairs `skip` rejects.
    pub fn path_and_query(&self, skip: impl Fn(&str) -> bool) -> String {
        self.with_query(&self.path(), skip)
    }

    /// `path` (this request's [`path`](Self::path), already encoded) and
    /// the query as forwarded, without the pairs `skip` rejects.
    pub fn with_query(&self, path: &str, skip: impl Fn(&str) -> bool) -> String {
        let mut out = String::with_capacity(path.len() + 64);
        out.push_str(path);
        let mut first = true;
        for (key, value) in self.query.iter().filter(|(key, _)| !skip(key)) {
            out.push(if first { '?' } else { '&' });
            first = false;
            push_encoded(&mut out, key, QUERY, &QUERY_LITERAL);
            out.push('=');
            push_encoded(&mut out, value, QUERY, &QUERY_LITERAL);
        }
        out
    }

    /// Every value of the query parameter `name`.
    pub fn query_values<'q>(&'q self, name: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.query
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| &**value)
    }

    /// The segments as string slices, as the router takes them: inline up
    /// to 16, without an allocation.
    pub fn segment_refs(&self) -> smallvec::SmallVec<[&str; 16]> {
        self.segments.iter().map(|segment| &**segment).collect()
    }
}

fn check_headers(headers: &HeaderMap) -> Result<(), GatewayError> {
    // One pass over the request's few fields, not a hashed lookup for each
    // name checked.
    let (mut hosts, mut authorizations) = (0usize, 0usize);
    let (mut content_types, mut content_lengths) = (0usize, 0usize);
    let (mut upgrade, mut codings, mut chunked) = (false, 0usize, true);
    for (name, value) in headers {
        if name == header::HOST {
            hosts += 1;
        } else if name == header::AUTHORIZATION {
            authorizations += 1;
        } else if name == header::CONTENT_TYPE {
            content_types += 1;
        } else if name == header::CONTENT_LENGTH {
            content_lengths += 1;
        } else if name == header::UPGRADE {
            upgrade = true;
        } else if name == header::TRANSFER_ENCODING {
            codings += 1;
            chunked &= value
                .to_str()
                .is_ok_and(|value| value.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    if hosts > 1 {
        return Err(GatewayError::BadRequest("more than one Host header"));
    }
    if authorizations > 1 {
        return Err(GatewayError::BadRequest(
            "more than one Authorization header",
        ));
    }
    if content_types > 1 || content_lengths > 1 {
        return Err(GatewayError::BadRequest(
            "a Content-Type or Content-Length header is repeated",
        ));
    }
    if upgrade {
        return Err(GatewayError::BadRequest(
            "protocol upgrades are not proxied",
        ));
    }
    if codings > 1 || (codings == 1 && !chunked) {
        return Err(GatewayError::BadRequest(
            "Transfer-Encoding other than chunked",
        ));
    }
    Ok(())
}

fn decode_segment(raw: &str) -> Result<Cow<'_, str>, GatewayError> {
    if raw.is_empty() {
        return Err(GatewayError::BadRequest("empty path segment"));
    }
    if raw.as_bytes().contains(&b'\\') {
        return Err(GatewayError::BadRequest("backslash in path"));
    }
    let decoded = strict_decode(raw, false)?;
    if decoded == "." || decoded == ".." {
        return Err(GatewayError::BadRequest("dot segment in path"));
    }
    // Only decoding can bring in a slash (the path was split on them) or a
    // backslash (refused above).
    if matches!(&decoded, Cow::Owned(text) if text.bytes().any(|b| b == b'/' || b == b'\\')) {
        return Err(GatewayError::BadRequest(
            "encoded slash or backslash in path",
        ));
    }
    Ok(decoded)
}

fn parse_query(query: &str) -> Result<Vec<QueryPair<'_>>, GatewayError> {
    split_ascii(query, b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.bytes().position(|b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, ""),
            };
            Ok((strict_decode(key, true)?, strict_decode(value, true)?))
        })
        .collect()
}

/// The parts of `text` between `separator`s, an ASCII byte. A byte scan:
/// `str::split`'s char searcher costs more per part than a path segment or a
/// query pair has bytes.
fn split_ascii(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    debug_assert!(separator.is_ascii());
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        Some(match current.bytes().position(|b| b == separator) {
            // An ASCII byte is always a char boundary.
            Some(at) => {
                rest = Some(&current[at + 1..]);
                &current[..at]
            }
            None => {
                rest = None;
                current
            }
        })
    })
}

/// Percent-decodes `text`, refusing malformed escapes, invalid UTF-8 and
/// control characters. In a query, `+` is a space (form encoding).
fn strict_decode(text: &str, plus_is_space: bool) -> Result<Cow<'_, str>, GatewayError> {
    let raw = text.as_bytes();
    // Most segments and values hold nothing to decode: one scan, no copy,
    // without an early exit so that it runs many bytes per step.
    // The byte that means a space, if any; `%` (refused anyway) stands in
    // when `+` is literal, so that the test below stays branch-free.
    let plus = if plus_is_space { b'+' } else { b'%' };
    if raw.iter().fold(true, |plain, &b| {
        plain & (b.is_ascii_graphic() & (b != b'%') & (b != plus))
    }) {
        // Visible ASCII only: valid UTF-8 without a control character.
        return Ok(Cow::Borrowed(text));
    }
    for (i, &byte) in raw.iter().enumerate() {
        if byte == b'%' {
            let valid = raw
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(GatewayError::BadRequest("invalid percent escape"));
            }
        }
    }
    let decoded = if plus_is_space && raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_decode(&spaced).collect::<Vec<u8>>()
    } else {
        percent_decode(raw).collect::<Vec<u8>>()
    };
    let decoded = String::from_utf8(decoded)
        .map_err(|_| GatewayError::BadRequest("invalid UTF-8 in the request line"))?;
    if decoded.chars().any(char::is_control) {
        return Err(GatewayError::BadRequest(
            "control character in the request line",
        ));
    }
    Ok(Cow::Owned(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(target: &str) -> Result<CanonicalRequest<'static>, GatewayError> {
        // Leaked: a test's request line lives as long as the test.
        let uri: &'static Uri = Box::leak(Box::new(target.parse().unwrap()));
        CanonicalRequest::parse(&Method::GET, uri, &HeaderMap::new())
    }

    #[test]
    fn plain_text_decodes_to_itself_on_the_fast_path() {
        let printable: String = (0x21u8..0x7f)
            .filter(|&b| b != b'%')
            .map(char::from)
            .collect();
        let decoded = strict_decode(&printable, false).unwrap();
        assert!(matches!(decoded, Cow::Borrowed(text) if text == printable));
        assert_eq!(strict_decode("a+b", true).unwrap(), "a b");
        assert_eq!(strict_decode("a+b", false).unwrap(), "a+b");
        assert_eq!(strict_decode("é", false).unwrap(), "é");
        assert!(strict_decode("a\x7fb", false).is_err());
        assert!(strict_decode("a b\t", false).is_err());
    }

    #[test]
    fn literal_tables_agree_with_the_encode_sets() {
        for (set, literal) in [(SEGMENT, &SEGMENT_LITERAL), (QUERY, &QUERY_LITERAL)] {
            for b in 0..=255u8 {
                let text = [b];
                let encoded: String = percent_encoding::percent_encode(&text, set).collect();
                assert_eq!(
                    literal[usize::from(b)],
                    encoded.as_bytes() == text,
                    "byte {b:#x}"
                );
            }
            let mut out = String::new();
            push_encoded(&mut out, "a b;é", set, literal);
            assert_eq!(out, utf8_percent_encode("a b;é", set).to_string());
        }
    }

    #[test]
    fn ascii_splits_agree_with_str_split() {
        for text in ["", "/", "a", "a/b", "/a/b/", "//", "é/ü/x", "a=b=c"] {
            for separator in [b'/', b'='] {
                assert_eq!(
                    split_ascii(text, separator).collect::<Vec<_>>(),
                    text.split(char::from(separator)).collect::<Vec<_>>(),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn ambiguous_paths_are_rejected() {
        for target in [
            "/a/%2F/b",
            "/a%2fb",
            "/a/%5C",
            "/a/%5c",
            "/a\\b",
            "/a/b%5C/c",
            "/a/%00",
            "/a/../b",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a/.%2E/b",
            "/a/%2e",
            "//a",
            "/a//b",
            "/a/",
            "/a/%zz",
            "/a/%4",
            "/a/%C3%28",
            "/a/%0d%0a",
            "/a?x=%ff",
            "/a?x=%",
            "/a?x=%00",
        ] {
            assert!(
                matches!(canon(target), Err(GatewayError::BadRequest(_))),
                "{target} was accepted"
            );
        }
    }

    #[test]
    fn the_forwarded_form_is_the_matched_form() {
        let request =
            canon("/members/v1/m%65mbers/a%20b;c?fieldsets=FULL&x=a+b&x=%2B&empty&&y=1=2").unwrap();
        assert_eq!(request.segments, ["members", "v1", "members", "a b;c"]);
        assert_eq!(
            request.query,
            [
                ("fieldsets".into(), "FULL".into()),
                ("x".into(), "a b".into()),
                ("x".into(), "+".into()),
                ("empty".into(), "".into()),
                ("y".into(), "1=2".into()),
            ]
        );
        assert_eq!(
            request.path_and_query(|_| false),
            "/members/v1/members/a%20b%3Bc?fieldsets=FULL&x=a%20b&x=%2B&empty=&y=1%3D2"
        );
        assert_eq!(
            request.path_and_query(|key| key == "x"),
            "/members/v1/members/a%20b%3Bc?fieldsets=FULL&empty=&y=1%3D2"
        );
        assert_eq!(canon("/").unwrap().path(), "/");
    }

    #[test]
    fn smuggling_headers_are_rejected() {
        let uri: Uri = "/a".parse().unwrap();
        for (name, values) in [
            ("host", &["a", "b"][..]),
            ("authorization", &["t1", "t2"][..]),
            ("upgrade", &["websocket"][..]),
            ("transfer-encoding", &["gzip, chunked"][..]),
            ("transfer-encoding", &["chunked", "chunked"][..]),
            (
                "content-type",
                &["application/json", "application/x-protobuf"][..],
            ),
            ("content-length", &["1", "1"][..]),
        ] {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(http::HeaderName::from_static(name), value.parse().unwrap());
            }
            assert!(
                CanonicalRequest::parse(&Method::POST, &uri, &headers).is_err(),
                "{name}: {values:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::TRANSFER_ENCODING, "Chunked".parse().unwrap());
        assert!(CanonicalRequest::parse(&Method::POST, &uri, &headers).is_ok());
        assert!(CanonicalRequest::parse(&Method::TRACE, &uri, &HeaderMap::new()).is_err());
    }
}
