//! The server's own HTTP/1: what a client sends is read one way only, what
//! it refuses is answered with a Wix-shaped error, and every answer is
//! framed by the server whatever headers the handler left in.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use common::wire::{closed, read_answer, Answer};
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use wix_elevator::{
    body::{self, Body},
    server::{Handler, IncomingBody, Server, ServerOptions},
};

/// `/echo` answers with the request body; `/stream` with a body of unknown
/// length; `/framed` with a body whose own `content-length` and
/// `transfer-encoding` headers lie; `/early` with an interim status;
/// `/slow` after [`SLOW`]; anything else with its path and the body unread.
/// Records each path, and each `/slow` answer it finished.
#[derive(Clone, Default)]
struct Wire {
    seen: Arc<Mutex<Vec<String>>>,
    finished: Arc<Mutex<Vec<String>>>,
}

/// How long `/slow` takes.
const SLOW: Duration = Duration::from_millis(1_500);

impl Handler for Wire {
    type Session = ();

    async fn handle(
        &self,
        request: Request<IncomingBody>,
        _: SocketAddr,
        _: &mut (),
    ) -> Response<Body> {
        let path = request.uri().path().to_owned();
        self.seen.lock().unwrap().push(path.clone());
        match path.as_str() {
            "/echo" => {
                let bytes = request.into_body().collect().await.unwrap().to_bytes();
                Response::new(body::full(bytes))
            }
            "/stream" => {
                let pieces = ["one,", "two,", "three"]
                    .map(|piece| Ok::<_, body::BoxError>(Frame::data(Bytes::from(piece))));
                Response::new(StreamBody::new(futures::stream::iter(pieces)).boxed())
            }
            "/slow" => {
                tokio::time::sleep(SLOW).await;
                self.finished.lock().unwrap().push(path.clone());
                Response::new(body::full(path))
            }
            "/early" => Response::builder()
                .status(103)
                .body(body::full("early"))
                .unwrap(),
            "/framed" => Response::builder()
                .header("content-length", "999")
                .header("transfer-encoding", "gzip")
                .header("connection", "upgrade")
                .body(body::full("framed"))
                .unwrap(),
            _ => Response::new(body::full(path)),
        }
    }
}

impl Wire {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn start(wire: &Wire) -> Server {
    start_with(wire, ServerOptions::default()).await
}

async fn start_with(wire: &Wire, options: ServerOptions) -> Server {
    Server::start(common::loopback().await, wire.clone(), options)
}

fn connect(server: &Server) -> TcpStream {
    common::wire::connect(server.local_addr())
}

/// Sends `raw` on a new connection; returns the answer and whether the
/// server closed the connection after it.
async fn exchange(server: &Server, raw: Vec<u8>) -> (Answer, bool) {
    let mut stream = connect(server);
    tokio::task::spawn_blocking(move || {
        stream.write_all(&raw).unwrap();
        let answer = read_answer(&mut stream, false);
        (answer, closed(&mut stream))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn refused_heads_get_a_wix_shaped_error_and_the_connection_ends() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde".to_vec(),
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET /echo HTTP/1.1\r\nBad Name: x\r\n\r\n".to_vec(), 400),
        (b"GET /echo HTTP/1.1\r\nX: a\nY: b\r\n\r\n".to_vec(), 400),
        (
            format!("GET /echo HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            431,
        ),
        // A line that never ends is refused once it is too long, not read
        // for ever.
        (
            format!("GET /echo HTTP/1.1\r\nX: {}", "a".repeat(70_000)).into_bytes(),
            431,
        ),
    ];
    for (raw, status) in cases {
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
        let (answer, was_closed) = exchange(&server, raw).await;
        assert_eq!(answer.status, status, "{shown}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let error: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        let id = &error["details"]["applicationError"]["data"]["requestId"];
        assert_eq!(id.as_str().map(str::len), Some(32), "{error}");
        assert_eq!(answer.header("x-request-id"), id.as_str());
        assert_eq!(answer.header("connection"), Some("close"));
        assert!(was_closed, "{shown}");
    }
    assert!(
        wire.seen().is_empty(),
        "a refused request reached the handler"
    );
}

#[tokio::test]
async fn a_chunked_body_sent_in_pieces_arrives_whole_and_the_connection_serves_on() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let mut stream = connect(&server);
    let answers = tokio::task::spawn_blocking(move || {
        let pieces: [&[u8]; 4] = [
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6;ext=1\r\n, worl\r\n",
            b"1\r\nd\r\n0\r\nTrailer: t\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        ];
        for piece in pieces {
            stream.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let first = read_answer(&mut stream, false);
        let second = read_answer(&mut stream, false);
        (first, second)
    })
    .await
    .unwrap();
    assert_eq!(answers.0.status, 200);
    assert_eq!(answers.0.body, b"hello, world");
    assert_eq!(answers.0.header("connection"), None);
    assert_eq!(answers.1.body, b"abc");
    assert_eq!(wire.seen(), ["/echo", "/echo"]);
}

#[tokio::test]
async fn continue_is_sent_only_when_the_body_is_read() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let (read, refused) = tokio::task::spawn_blocking({
        let (mut reading, mut refusing) = (connect(&server), connect(&server));
        move || {
            reading
                .write_all(
                    b"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                )
                .unwrap();
            let interim = read_answer(&mut reading, false);
            reading.write_all(b"ping").unwrap();
            let read = (interim.status, read_answer(&mut reading, false));
            refusing
                .write_all(
                    b"POST /deny HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                )
                .unwrap();
            let refused = read_answer(&mut refusing, false);
            (read, (refused, closed(&mut refusing)))
        }
    })
    .await
    .unwrap();
    assert_eq!(read.0, 100);
    assert_eq!((read.1.status, read.1.body.as_slice()), (200, &b"ping"[..]));
    // Answered without asking for the body, which then cannot follow on
    // the connection.
    assert_eq!(
        (refused.0.status, refused.0.body.as_slice()),
        (200, &b"/deny"[..])
    );
    assert_eq!(refused.0.header("connection"), Some("close"));
    assert!(refused.1);
}

#[tokio::test]
async fn answers_are_framed_by_the_server_alone() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let mut stream = connect(&server);
    let (streamed, framed, head, old) = tokio::task::spawn_blocking({
        let mut old_client = connect(&server);
        move || {
            stream
                .write_all(b"GET /stream HTTP/1.1\r\n\r\nGET /framed HTTP/1.1\r\n\r\nHEAD /framed HTTP/1.1\r\n\r\n")
                .unwrap();
            let streamed = read_answer(&mut stream, false);
            let framed = read_answer(&mut stream, false);
            let head = read_answer(&mut stream, true);
            // HTTP/1.0 knows no chunked coding: the end of the stream ends
            // the body.
            old_client
                .write_all(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let old = read_answer(&mut old_client, false);
            (streamed, framed, head, old)
        }
    })
    .await
    .unwrap();
    assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
    assert_eq!(streamed.body, b"one,two,three");
    assert_eq!(framed.header("content-length"), Some("6"));
    assert_eq!(framed.header("transfer-encoding"), None);
    assert_eq!(framed.header("connection"), None);
    assert_eq!(framed.body, b"framed");
    assert!(framed.header("date").is_some());
    // A HEAD answer states the length the handler gave, and has no body:
    // had it one, the bytes would be read as the next answer's head.
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("999"));
    assert_eq!(old.header("transfer-encoding"), None);
    assert_eq!(old.header("content-length"), None);
    assert_eq!(old.body, b"one,two,three");
    assert_eq!(wire.seen(), ["/stream", "/framed", "/framed", "/stream"]);
}

#[tokio::test]
async fn a_head_split_after_its_first_byte_is_read_as_strictly() {
    // "P" could open HTTP/2's preface: the server waits to see which.
    let wire = Wire::default();
    let server = start(&wire).await;
    let mut stream = connect(&server);
    let (answer, was_closed) = tokio::task::spawn_blocking(move || {
        stream.write_all(b"P").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream
            .write_all(b"OST /echo HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .unwrap();
        (read_answer(&mut stream, false), closed(&mut stream))
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 400);
    assert!(was_closed);
    assert!(wire.seen().is_empty());
}

#[tokio::test]
async fn a_client_that_stops_inside_the_http2_preface_is_closed() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let mut stream = connect(&server);
    let started = std::time::Instant::now();
    let ended = tokio::task::spawn_blocking(move || {
        stream.write_all(b"PRI * HT").unwrap();
        // Closed with the bytes unread: the end of the stream or a reset.
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
        }
    })
    .await
    .unwrap();
    assert!(ended, "the connection was not closed");
    // Well before the 10 s header-read timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(wire.seen().is_empty());
}

#[tokio::test]
async fn an_interim_status_from_a_handler_is_never_sent_as_an_answer() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let (answer, _) = exchange(
        &server,
        b"GET /early HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_client_that_leaves_drops_the_work_on_its_request() {
    let wire = Wire::default();
    let server = start(&wire).await;
    let mut stream = connect(&server);
    stream.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
    common::wait_until("the request is handled", || !wire.seen().is_empty()).await;
    drop(stream);
    tokio::time::sleep(SLOW + Duration::from_millis(300)).await;
    assert!(
        wire.finished.lock().unwrap().is_empty(),
        "the handler ran on for a client that had left"
    );
}

#[tokio::test]
async fn an_answer_still_pending_when_the_drain_times_out_is_dropped() {
    let wire = Wire::default();
    let options = ServerOptions {
        drain_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let server = start_with(&wire, options).await;
    let mut stream = connect(&server);
    stream.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
    common::wait_until("the request is handled", || !wire.seen().is_empty()).await;
    server.shutdown().await;
    let started = std::time::Instant::now();
    let was_closed = tokio::task::spawn_blocking(move || closed(&mut stream))
        .await
        .unwrap();
    assert!(was_closed);
    assert!(
        started.elapsed() < SLOW / 2,
        "closed after {:?}",
        started.elapsed()
    );
    assert!(wire.finished.lock().unwrap().is_empty());
}
