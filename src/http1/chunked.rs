//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly: CRLF
//! line ends only, bounded size lines and trailers, no chunk size that
//! could overflow. Trailers are read and dropped; the gateway forwards none.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::invalid;

/// Longest chunk-size line, extensions included.
const MAX_LINE: usize = 4 * 1024;

/// Most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// Room for the longest chunk head: 16 hex digits and CRLF.
pub(crate) const CHUNK_HEAD: usize = 18;

/// The line that opens a chunk of `size` bytes (its size in lowercase hex,
/// then CRLF), written into `buf`.
pub(crate) fn chunk_head(mut size: usize, buf: &mut [u8; CHUNK_HEAD]) -> &[u8] {
    buf[CHUNK_HEAD - 2..].copy_from_slice(b"\r\n");
    let mut at = CHUNK_HEAD - 2;
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[size & 0xf];
        size >>= 4;
        if size == 0 {
            return &buf[at..];
        }
    }
}

/// Where the decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
    Done,
}

/// What one step of decoding gives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no further complete piece; read more.
    NeedMore,
    /// The last chunk and the trailers have been read.
    End,
}

/// A chunked body's decoder.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
}

impl Chunked {
    pub fn new() -> Self {
        Self { state: State::Size }
    }

    /// Decodes from the front of `buf`, consuming what it uses.
    pub fn step(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        loop {
            match self.state {
                State::Size => {
                    let Some(line) = take_line(buf, MAX_LINE)? else {
                        return Ok(Step::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = left.min(buf.len() as u64);
                    self.state = if take == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take)
                    };
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("a chunk overruns its size"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers(seen) => {
                    let Some(line) = take_line(buf, MAX_TRAILERS.saturating_sub(seen))? else {
                        return Ok(Step::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                    } else {
                        self.state = State::Trailers(seen + line.len() + 2);
                    }
                }
                State::Done => return Ok(Step::End),
            }
        }
    }
}

/// Takes one CRLF-terminated line off `buf` (without its CRLF), if a whole
/// one is there; a line longer than `max`, or one ended by a bare LF or
/// holding a bare CR, is an error.
fn take_line(buf: &mut BytesMut, max: usize) -> io::Result<Option<BytesMut>> {
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > max {
            Err(invalid("a chunk line is too long"))
        } else {
            Ok(None)
        };
    };
    if lf == 0
        || buf[lf - 1] != b'\r'
        || lf - 1 > max
        || memchr::memchr(b'\r', &buf[..lf - 1]).is_some()
    {
        return Err(invalid("a chunk line is malformed"));
    }
    let mut line = buf.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// The size on a chunk-size line: hex digits, then optional extensions
/// (ignored).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    // 15 hex digits cannot overflow a u64.
    if digits == 0 || digits > 15 || !(rest.is_empty() || rest[0] == b';') {
        return Err(invalid("a chunk size is malformed"));
    }
    Ok(line[..digits].iter().fold(0u64, |size, &digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        size * 16 + u64::from(value)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `piece` bytes: the body, or the error.
    fn decode(input: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.step(&mut buf)? {
                Step::Data(bytes) => body.extend_from_slice(&bytes),
                Step::End => return Ok(body),
                Step::NeedMore if fed < input.len() => {
                    let end = (fed + piece).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Step::NeedMore => return Err(invalid("ended early")),
            }
        }
    }

    #[test]
    fn chunk_heads_state_the_size_in_hex() {
        let mut buf = [0; CHUNK_HEAD];
        assert_eq!(chunk_head(0, &mut buf), b"0\r\n");
        assert_eq!(chunk_head(255, &mut buf), b"ff\r\n");
        assert_eq!(chunk_head(4096, &mut buf), b"1000\r\n");
        assert_eq!(chunk_head(usize::MAX, &mut buf), b"ffffffffffffffff\r\n");
        // What is encoded decodes to itself.
        let mut encoded = chunk_head(11, &mut buf).to_vec();
        encoded.extend_from_slice(b"hello world\r\n0\r\n\r\n");
        assert_eq!(decode(&encoded, 3).unwrap(), b"hello world");
    }

    #[test]
    fn bodies_decode_whatever_the_pieces() {
        let input = b"5\r\nhello\r\n7;name=\"v\"\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                decode(input, piece).unwrap(),
                b"hello, world",
                "pieces of {piece}"
            );
        }
        assert_eq!(
            decode(b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap(),
            b"0123456789"
        );
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap(), b"");
    }

    #[test]
    fn what_follows_the_body_stays_in_the_buffer() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from(&b"2\r\nok\r\n0\r\n\r\nHTTP/1.1"[..]);
        assert_eq!(
            decoder.step(&mut buf).unwrap(),
            Step::Data(Bytes::from_static(b"ok"))
        );
        assert_eq!(decoder.step(&mut buf).unwrap(), Step::End);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    #[test]
    fn malformed_codings_are_refused() {
        for input in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello!\r\n0\r\n\r\n",
            b"x\r\nhello\r\n0\r\n\r\n",
            b"\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5\r\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffff\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
        ] {
            assert!(
                decode(input, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long_line = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_LINE));
        assert!(decode(long_line.as_bytes(), 512).is_err());
        let trailers: String = (0..2000).map(|i| format!("X-{i}: vvvvvv\r\n")).collect();
        assert!(decode(format!("0\r\n{trailers}\r\n").as_bytes(), 512).is_err());
    }

    /// Encodings built at random and then damaged decode the same however
    /// they are cut into reads: the same body, or an error either way. A
    /// decoder whose answer depends on where reads end could be steered
    /// by a client's timing.
    #[test]
    fn the_answer_never_depends_on_where_reads_end() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(0xc4u64);
        let mut decoded = 0;
        for _ in 0..5_000 {
            let mut input = Vec::new();
            for _ in 0..rng.random_range(0..4) {
                let size = rng.random_range(1..40usize);
                input.extend_from_slice(format!("{size:x}").as_bytes());
                if rng.random_bool(0.2) {
                    input.extend_from_slice(b";ext=1");
                }
                input.extend_from_slice(b"\r\n");
                input.extend((0..size).map(|i| b'a' + (i % 26) as u8));
                input.extend_from_slice(b"\r\n");
            }
            input.extend_from_slice(b"0\r\n");
            if rng.random_bool(0.3) {
                input.extend_from_slice(b"T: v\r\n");
            }
            input.extend_from_slice(b"\r\n");
            for _ in 0..rng.random_range(0..3) {
                let at = rng.random_range(0..input.len());
                input[at] = b"\r\n0a;x"[rng.random_range(0..6)];
            }
            let whole = decode(&input, input.len()).map_err(|_| ());
            decoded += usize::from(whole.is_ok());
            for piece in [1, 2, 3, 5] {
                let cut = decode(&input, piece).map_err(|_| ());
                assert_eq!(
                    cut,
                    whole,
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
        assert!(decoded > 1_000, "only {decoded} inputs decoded");
    }
}
