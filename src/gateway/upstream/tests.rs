//! The cleartext transport against a scripted upstream on loopback: what
//! reaches the upstream byte for byte, how responses are delimited, and when
//! a connection is reused, retried or closed.

use std::{
    collections::VecDeque,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};

use super::{http1::Http1, Outgoing};
use crate::body::BoxError;

/// Each test's upper bound.
const DEADLINE: Duration = Duration::from_secs(10);

/// The transport under test, and the upstream's side of its connections.
struct Harness {
    transport: Arc<Http1>,
    accepted: mpsc::UnboundedReceiver<TcpStream>,
    authority: String,
}

async fn harness() -> Harness {
    harness_keeping_idle(Duration::from_secs(60)).await
}

async fn harness_keeping_idle(idle_timeout: Duration) -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if tx.send(stream).is_err() {
                break;
            }
        }
    });
    let authority = format!("127.0.0.1:{port}");
    let transport = Http1::new(
        "127.0.0.1",
        port,
        HeaderValue::from_str(&authority).unwrap(),
        Duration::from_secs(2),
        idle_timeout,
    );
    Harness {
        transport: Arc::new(transport),
        accepted,
        authority,
    }
}

type Answer = io::Result<(u16, Bytes)>;

impl Harness {
    async fn next_connection(&mut self) -> TcpStream {
        tokio::time::timeout(DEADLINE, self.accepted.recv())
            .await
            .expect("a connection within the deadline")
            .unwrap()
    }

    async fn assert_no_new_connection(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            self.accepted.try_recv().is_err(),
            "a new connection was opened"
        );
    }

    /// Sends a request from a task of its own; the test plays the upstream
    /// meanwhile.
    fn send(&self, method: Method, path: &'static str, body: Outgoing) -> JoinHandle<Answer> {
        let transport = self.transport.clone();
        tokio::spawn(async move {
            let mut headers = HeaderMap::new();
            headers.insert("accept", HeaderValue::from_static("application/json"));
            let response = transport.send(&method, path, &headers, body).await?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(io::Error::other)?
                .to_bytes();
            Ok((status, body))
        })
    }

    fn get(&self, path: &'static str) -> JoinHandle<Answer> {
        self.send(Method::GET, path, Outgoing::Bytes(Bytes::new()))
    }
}

/// Reads one request head off `stream`, and then `body` bytes more.
async fn read_request(stream: &mut TcpStream, body: usize) -> String {
    let mut seen = read_until(stream, b"\r\n\r\n").await;
    let mut rest = vec![0u8; body];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut rest))
        .await
        .expect("the body within the deadline")
        .unwrap();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    seen
}

/// Reads from `stream` until `end` has arrived, within the deadline.
async fn read_until(stream: &mut TcpStream, end: &[u8]) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(end) {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("more bytes within the deadline");
        assert_eq!(read.unwrap(), 1, "stream cut short");
        seen.push(byte[0]);
    }
    String::from_utf8(seen).unwrap()
}

async fn answer(stream: &mut TcpStream, pieces: &[&str]) {
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stream.write_all(piece.as_bytes()).await.unwrap();
    }
}

async fn joined(handle: JoinHandle<Answer>) -> Answer {
    tokio::time::timeout(DEADLINE, handle)
        .await
        .expect("answered within the deadline")
        .unwrap()
}

fn ok(status: u16, body: &'static str) -> (u16, Bytes) {
    (status, Bytes::from_static(body.as_bytes()))
}

/// A streamed request body: its pieces, then its end, or (`stalls`) a
/// client that never sends the rest; of unknown length unless `announced`.
struct Pieces {
    pieces: VecDeque<Bytes>,
    stalls: bool,
    announced: Option<u64>,
}

impl Pieces {
    fn new(pieces: &[&'static [u8]]) -> Self {
        Self {
            pieces: pieces
                .iter()
                .map(|piece| Bytes::from_static(piece))
                .collect(),
            stalls: false,
            announced: None,
        }
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.pieces.pop_front() {
            Some(piece) => Poll::Ready(Some(Ok(Frame::data(piece)))),
            None if self.stalls => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.announced
            .map(hyper::body::SizeHint::with_exact)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn answers_of_every_framing_come_back_over_one_connection() {
    let mut h = harness().await;
    let request = h.get("/members/v1/members/m1?fieldsets=FULL");
    let mut conn = h.next_connection().await;
    assert_eq!(
        read_request(&mut conn, 0).await,
        format!(
            "GET /members/v1/members/m1?fieldsets=FULL HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\n\r\n",
            h.authority
        )
    );
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "first"));

    // Chunked, in pieces.
    let request = h.get("/b");
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &[
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsec",
            "ond\r\n0\r\n\r\n",
        ],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "second"));

    // A length-delimited body that arrives after its head, and an
    // interim answer before the final one.
    let request = h.get("/c");
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &[
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n",
            "th",
            "ird",
        ],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(201, "third"));

    // No body at all.
    let request = h.send(Method::HEAD, "/d", Outgoing::Bytes(Bytes::new()));
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, ""));

    h.assert_no_new_connection().await;
    assert_eq!(h.transport.idle(), 1);
}

#[tokio::test]
async fn request_bodies_are_framed_by_the_gateway() {
    let mut h = harness().await;
    let request = h.send(
        Method::POST,
        "/items",
        Outgoing::Bytes(Bytes::from_static(b"{\"a\":1}")),
    );
    let mut conn = h.next_connection().await;
    let seen = read_request(&mut conn, 7).await;
    assert!(
        seen.starts_with("POST /items HTTP/1.1\r\n")
            && seen.ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
        "{seen:?}"
    );
    answer(&mut conn, &["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).await;
    assert_eq!(joined(request).await.unwrap(), ok(200, ""));

    // A stream of unknown length goes chunked.
    let pieces = Pieces::new(&[b"hello", b"", b" world"]);
    let request = h.send(Method::PUT, "/items", Outgoing::Stream(pieces.boxed()));
    let head = read_request(&mut conn, 0).await;
    assert!(
        head.ends_with("transfer-encoding: chunked\r\n\r\n"),
        "{head:?}"
    );
    assert!(!head.contains("content-length"), "{head:?}");
    assert_eq!(
        read_until(&mut conn, b"0\r\n\r\n").await,
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    answer(&mut conn, &["HTTP/1.1 204 No Content\r\n\r\n"]).await;
    assert_eq!(joined(request).await.unwrap(), ok(204, ""));

    // An empty POST still says so.
    let request = h.send(Method::POST, "/items", Outgoing::Bytes(Bytes::new()));
    let head = read_request(&mut conn, 0).await;
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head:?}");
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "ok"));
    h.assert_no_new_connection().await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    let mut h = harness().await;
    let request = h.get("/a");
    let mut conn = h.next_connection().await;
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "a"));
    drop(conn);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A POST, which would not be sent twice: it must go on a new
    // connection at once.
    let request = h.send(
        Method::POST,
        "/b",
        Outgoing::Bytes(Bytes::from_static(b"{}")),
    );
    let mut conn = h.next_connection().await;
    let resent = read_request(&mut conn, 2).await;
    assert!(
        resent.ends_with("content-length: 2\r\n\r\n{}"),
        "{resent:?}"
    );
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "b"));
}

/// Serves one request on a fresh connection and leaves it idle in the pool.
async fn pooled(h: &mut Harness) -> TcpStream {
    let request = h.get("/warm");
    let mut conn = h.next_connection().await;
    read_request(&mut conn, 0).await;
    answer(&mut conn, &["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).await;
    joined(request).await.unwrap();
    conn
}

#[tokio::test]
async fn a_get_is_sent_again_when_a_reused_connection_closes_unanswered() {
    let mut h = harness().await;
    let mut conn = pooled(&mut h).await;
    let request = h.get("/again");
    let first = read_request(&mut conn, 0).await;
    drop(conn);
    let mut fresh = h.next_connection().await;
    assert_eq!(
        read_request(&mut fresh, 0).await,
        first,
        "the same request again"
    );
    answer(
        &mut fresh,
        &["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(200, "ok"));
}

#[tokio::test]
async fn a_post_the_upstream_may_have_seen_is_never_sent_twice() {
    let mut h = harness().await;
    let mut conn = pooled(&mut h).await;
    let request = h.send(
        Method::POST,
        "/orders",
        Outgoing::Bytes(Bytes::from_static(b"{}")),
    );
    read_request(&mut conn, 2).await;
    drop(conn);
    assert!(joined(request).await.is_err());
    h.assert_no_new_connection().await;
}

/// What the upstream writes, whether it then closes, what the caller gets
/// (`None`: an error).
type Case = (&'static [&'static str], bool, Option<(u16, Bytes)>);

#[tokio::test]
async fn ambiguous_or_broken_answers_fail_and_close_the_connection() {
    let cases: [Case; 6] = [
        (
            &["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"],
            false,
            None,
        ),
        (
            &["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
            false,
            None,
        ),
        (
            &["HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"],
            false,
            None,
        ),
        (
            &["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n"],
            false,
            None,
        ),
        // The upstream gives up half-way.
        (
            &["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"],
            true,
            None,
        ),
        // Bytes after a complete answer: that answer stands, the connection
        // does not serve again.
        (
            &["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"],
            false,
            Some(ok(200, "a")),
        ),
    ];
    for (pieces, closes, expected) in cases {
        let mut h = harness().await;
        let request = h.get("/a");
        let mut conn = h.next_connection().await;
        read_request(&mut conn, 0).await;
        answer(&mut conn, pieces).await;
        let mut conn = (!closes).then_some(conn);
        let answer = joined(request).await;
        match &expected {
            Some(expected) => assert_eq!(answer.as_ref().unwrap(), expected, "{pieces:?}"),
            None => assert!(answer.is_err(), "{pieces:?}: {answer:?}"),
        }
        assert_eq!(h.transport.idle(), 0, "{pieces:?}");
        if let Some(conn) = conn.as_mut() {
            // The gateway ends the connection.
            let read = tokio::time::timeout(DEADLINE, conn.read(&mut [0u8; 64])).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "{pieces:?}: {read:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_delimited_by_close_ends_with_its_connection() {
    let mut h = harness().await;
    let request = h.get("/a");
    let mut conn = h.next_connection().await;
    read_request(&mut conn, 0).await;
    answer(&mut conn, &["HTTP/1.1 200 OK\r\n\r\nall ", "of it"]).await;
    drop(conn);
    assert_eq!(joined(request).await.unwrap(), ok(200, "all of it"));
    assert_eq!(h.transport.idle(), 0);
}

#[tokio::test]
async fn a_body_dropped_half_way_closes_its_connection() {
    let mut h = harness().await;
    let transport = h.transport.clone();
    let request = tokio::spawn(async move {
        let response = transport
            .send(
                &Method::GET,
                "/a",
                &HeaderMap::new(),
                Outgoing::Bytes(Bytes::new()),
            )
            .await
            .unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        drop(body);
        first
    });
    let mut conn = h.next_connection().await;
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"],
    )
    .await;
    let first = tokio::time::timeout(DEADLINE, request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"hello");
    assert_eq!(h.transport.idle(), 0);
    // The upstream sees the connection end.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, conn.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

/// A body larger than the socket buffers on both sides take in.
fn large_body() -> Bytes {
    Bytes::from(vec![b'x'; 8 << 20])
}

#[tokio::test]
async fn an_answer_before_the_body_is_read_is_returned_and_never_sent_twice() {
    let mut h = harness().await;
    let mut conn = pooled(&mut h).await;
    let request = h.send(Method::POST, "/upload", Outgoing::Bytes(large_body()));
    let head = read_request(&mut conn, 0).await;
    assert!(head.contains("content-length: 8388608"), "{head:?}");
    answer(
        &mut conn,
        &["HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"],
    )
    .await;
    drop(conn);
    assert_eq!(joined(request).await.unwrap(), ok(413, ""));
    h.assert_no_new_connection().await;
    assert_eq!(h.transport.idle(), 0);
}

#[tokio::test]
async fn an_upstream_that_answers_and_stops_reading_does_not_hang_the_exchange() {
    let mut h = harness().await;
    let request = h.send(Method::PUT, "/upload", Outgoing::Bytes(large_body()));
    let mut conn = h.next_connection().await;
    read_request(&mut conn, 0).await;
    answer(
        &mut conn,
        &["HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno"],
    )
    .await;
    // The upstream keeps the connection open and reads nothing more.
    assert_eq!(joined(request).await.unwrap(), ok(401, "no"));
    assert_eq!(
        h.transport.idle(),
        0,
        "left mid-request, it serves no other"
    );
    drop(conn);
}

#[tokio::test]
async fn a_stalled_upload_still_gets_the_upstreams_early_answer() {
    let mut h = harness().await;
    let mut upload = Pieces::new(&[b"{\"first\":"]);
    upload.stalls = true;
    let request = h.send(Method::POST, "/upload", Outgoing::Stream(upload.boxed()));
    let mut conn = h.next_connection().await;
    let head = read_request(&mut conn, 0).await;
    assert!(head.contains("transfer-encoding: chunked"), "{head:?}");
    answer(
        &mut conn,
        &["HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"],
    )
    .await;
    assert_eq!(joined(request).await.unwrap(), ok(413, ""));
    assert_eq!(h.transport.idle(), 0);
}

#[tokio::test]
async fn a_body_shorter_or_longer_than_announced_ends_the_exchange() {
    for (pieces, announced) in [(&[&b"hello"[..]][..], 10), (&[b"hello", b" world"], 5)] {
        let mut h = harness().await;
        let mut upload = Pieces::new(pieces);
        upload.announced = Some(announced);
        let request = h.send(Method::POST, "/upload", Outgoing::Stream(upload.boxed()));
        let mut conn = h.next_connection().await;
        let head = read_request(&mut conn, 0).await;
        assert!(
            head.contains(&format!("content-length: {announced}")),
            "{head:?}"
        );
        assert!(joined(request).await.is_err(), "{pieces:?} as {announced}");
        // The upstream sees the connection end, not a request waiting for
        // bytes that never come.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(DEADLINE, conn.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection was left open");
        assert!(
            b"hello".starts_with(&rest),
            "never more than announced: {rest:?}"
        );
    }
}

#[tokio::test]
async fn idle_connections_are_closed_once_their_time_is_up_without_traffic() {
    let mut h = harness_keeping_idle(Duration::from_millis(200)).await;
    let mut conn = pooled(&mut h).await;
    assert_eq!(h.transport.idle(), 1);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, conn.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    assert_eq!(h.transport.idle(), 0);
}
