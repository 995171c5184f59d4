//! The fixed-response upstream: a minimal HTTP/1.1 keep-alive server that
//! answers every request with the same small JSON body. It stands in for
//! Wix's API so that a benchmark measures the proxy, not the backend.
//!
//! It shares a core with the load tool, so every microsecond it spends per
//! request is one the load side cannot spend keeping the proxy busy. A
//! general server (hyper) took ~2 µs of user time per request there and left
//! that core as busy as the proxy's; this one parses a head with `httparse`,
//! skips a `Content-Length` body and writes one canned answer, all answers
//! to what one read brought in one write.

use std::{
    io,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The body every request gets (a Wix-shaped member, 120 bytes or so).
pub const BODY: &str = r#"{"member":{"id":"member-1","loginEmail":"bench@example.com","profile":{"nickname":"bench","slug":"bench"}}}"#;

/// Marks responses that really came from this server.
pub const MARK: &str = "x-bench-upstream";

/// Largest request (head and body) accepted; a bigger one ends the
/// connection.
const MAX_REQUEST: usize = 1024 * 1024;

/// Most header fields a request may carry.
const MAX_FIELDS: usize = 64;

/// Serves `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: back off, never spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = connection(stream).await;
        });
    }
}

/// Answers the requests of one connection until the peer closes it or
/// sends something this server does not take.
async fn connection(mut stream: TcpStream) -> io::Result<()> {
    let mut input = Vec::with_capacity(8 * 1024);
    let mut output = Vec::with_capacity(1024);
    let mut date = Date::default();
    loop {
        let mut consumed = 0;
        while let Some(length) = complete_request(&input[consumed..])? {
            consumed += length;
            write_answer(&mut output, date.now());
        }
        input.drain(..consumed);
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if input.len() >= MAX_REQUEST {
            return Err(invalid("request too large"));
        }
        if input.capacity() - input.len() < 4 * 1024 {
            input.reserve(input.capacity());
        }
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// The length of the request at the start of `input` (head and body), or
/// `None` while part of it has yet to arrive.
fn complete_request(input: &[u8]) -> io::Result<Option<usize>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut fields);
    let head = match request.parse(input) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(invalid(&error.to_string())),
    };
    let mut body = 0usize;
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(field.value)
                .ok()
                .and_then(|value| value.trim().parse().ok())
                .ok_or_else(|| invalid("bad Content-Length"))?;
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            // Neither proxy under test sends one for the benchmark's bodies.
            return Err(invalid("chunked request bodies are not taken"));
        }
    }
    let length = head.saturating_add(body);
    Ok((input.len() >= length).then_some(length))
}

/// Appends the one answer.
fn write_answer(output: &mut Vec<u8>, date: &str) {
    output.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-bench-upstream: 1\r\ncontent-length: ",
    );
    output.extend_from_slice(itoa::Buffer::new().format(BODY.len()).as_bytes());
    output.extend_from_slice(b"\r\ndate: ");
    output.extend_from_slice(date.as_bytes());
    output.extend_from_slice(b"\r\n\r\n");
    output.extend_from_slice(BODY.as_bytes());
}

/// The `Date` value, formatted once per second.
#[derive(Default)]
struct Date {
    second: u64,
    text: String,
}

impl Date {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        &self.text
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_complete_once_its_body_has_arrived() {
        let get = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(complete_request(get).unwrap(), Some(get.len()));
        assert_eq!(complete_request(&get[..10]).unwrap(), None);

        let post = b"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
        assert_eq!(complete_request(&post[..post.len() - 1]).unwrap(), None);
        let mut two = post.to_vec();
        two.extend_from_slice(get);
        assert_eq!(complete_request(&two).unwrap(), Some(post.len()));

        let chunked = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(complete_request(chunked).is_err());
    }
}
