//! Cleartext HTTP/1 keep-alive connections, served by the server's own
//! HTTP/1 implementation and holding no buffer while idle: pipelining in
//! order, `Connection: close` honoured, idle and drain timeouts, answers
//! to slow readers whole, and an unread request body never parsed as a
//! request.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::wire::{closed, read_answer, Answer};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use prometheus_client::metrics::gauge::Gauge;
use wix_elevator::{
    body::{self, Body},
    server::{Handler, IncomingBody, Server, ServerOptions},
};

/// The size of `/big`'s answer: far more than the socket buffers of a
/// [`slow_reader`] hold, so much of it is still the server's to write.
const BIG: usize = 16 << 20;

/// Answers every request with its path; reads the body only of paths
/// starting with `/read`; answers `/big` with [`BIG`] bytes; keeps `/hold`'s
/// body unread past the answer. Records each
/// path with the client's port.
#[derive(Clone, Default)]
struct Echo {
    seen: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Echo {
    fn seen(&self) -> Vec<(String, u16)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Echo {
    type Session = ();

    async fn handle(
        &self,
        request: Request<IncomingBody>,
        peer: SocketAddr,
        _: &mut (),
    ) -> Response<Body> {
        let path = request.uri().path().to_owned();
        self.seen.lock().unwrap().push((path.clone(), peer.port()));
        if path == "/big" {
            return Response::new(body::full(vec![b'x'; BIG]));
        }
        if path == "/hold" {
            // Answered at once; the body is kept unread past the answer (as
            // by a task the handler started) until the connection has been
            // idle a while, then dropped unread.
            let body = request.into_body();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(body);
            });
            return Response::new(body::full(path));
        }
        if path.starts_with("/read") {
            let body = request.into_body().collect().await.unwrap().to_bytes();
            return Response::new(body::full(format!("{path} {}", body.len())));
        }
        let mut response = Response::new(body::full(path));
        *response.status_mut() = StatusCode::FORBIDDEN;
        response
    }
}

async fn start(echo: &Echo, idle_timeout: Duration) -> Server {
    start_with(
        echo,
        ServerOptions {
            idle_timeout,
            ..ServerOptions::default()
        },
    )
    .await
}

async fn start_with(echo: &Echo, options: ServerOptions) -> Server {
    Server::start(common::loopback().await, echo.clone(), options)
}

/// A connection whose receive buffer is 4 KiB: the kernel's own buffering
/// (up to 32 MiB on loopback) cannot absorb an answer it does not read.
fn slow_reader(server: &Server) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.local_addr().into()).unwrap();
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn connect(server: &Server) -> TcpStream {
    common::wire::connect(server.local_addr())
}

/// Reads one response; returns the status and the body.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let answer = read_answer(stream, false);
    (answer.status, String::from_utf8(answer.body).unwrap())
}

/// Whether `answer` says the connection ends with it.
fn says_close(answer: &Answer) -> bool {
    answer
        .header("connection")
        .is_some_and(|value| value.eq_ignore_ascii_case("close"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let answers = tokio::task::spawn_blocking({
        let mut stream = connect(&server);
        move || {
            stream
                .write_all(
                    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
                      POST /read-b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz\
                      GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
            let answers: Vec<_> = (0..3).map(|_| read_response(&mut stream)).collect();
            (answers, closed(&mut stream))
        }
    })
    .await
    .unwrap();
    assert_eq!(
        answers.0,
        [
            (403, "/a".to_owned()),
            (200, "/read-b 3".to_owned()),
            (403, "/c".to_owned())
        ]
    );
    assert!(answers.1, "Connection: close was not honoured");
    let ports: Vec<u16> = echo.seen().iter().map(|(_, port)| *port).collect();
    assert_eq!(ports.len(), 3);
    assert!(ports.iter().all(|port| *port == ports[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_serves_again_after_idling_and_closes_after_the_idle_timeout() {
    // Idle for 800 ms between the requests: long enough for the idle
    // connection to wait as an idle one, holding no buffer.
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(2)).await;
    let (first, second, idle_closed_after) = tokio::task::spawn_blocking({
        let mut stream = connect(&server);
        move || {
            stream
                .write_all(b"POST /read-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
                .unwrap();
            let first = read_response(&mut stream);
            std::thread::sleep(Duration::from_millis(800));
            stream
                .write_all(b"GET /read-2 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let second = read_response(&mut stream);
            let idle_since = Instant::now();
            assert!(closed(&mut stream), "the idle connection was not closed");
            (first, second, idle_since.elapsed())
        }
    })
    .await
    .unwrap();
    assert_eq!(first, (200, "/read-1 2".to_owned()));
    assert_eq!(second, (200, "/read-2 0".to_owned()));
    assert!(
        idle_closed_after >= Duration::from_millis(1_800),
        "closed after {idle_closed_after:?}, before the idle timeout"
    );
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, seen[1].1, "both requests on one connection");
}

/// Sends `POST /deny`, which the handler answers without reading its body,
/// with a body that is a request of its own: with the head, or `late`, once
/// the answer is out. The body must never be served. A body that is still
/// to come when the answer goes out ends the connection; one that came with
/// its head may have been taken as the body it is, and then the connection
/// answers a next request as itself.
async fn unread_body_is_never_served(late: bool) {
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let (answer, after) = tokio::task::spawn_blocking({
        let mut stream = connect(&server);
        move || {
            let head = format!(
                "POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                smuggled.len()
            );
            if late {
                stream.write_all(head.as_bytes()).unwrap();
                let answer = read_response(&mut stream);
                std::thread::sleep(Duration::from_millis(200));
                // The server may already have closed: then this write fails.
                let _ = stream.write_all(smuggled.as_bytes());
                (answer, closed(&mut stream).then_some("closed".to_owned()))
            } else {
                stream
                    .write_all(format!("{head}{smuggled}").as_bytes())
                    .unwrap();
                let answer = read_response(&mut stream);
                let _ = stream
                    .write_all(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut rest = Vec::new();
                let after = match stream.read_to_end(&mut rest) {
                    Ok(_) if rest.is_empty() => Some("closed".to_owned()),
                    Ok(_) => Some(String::from_utf8_lossy(&rest).into_owned()),
                    Err(_) => None,
                };
                (answer, after)
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(answer, (403, "/deny".to_owned()));
    let after = after.expect("the connection neither closed nor answered");
    let paths: Vec<String> = echo.seen().into_iter().map(|(path, _)| path).collect();
    if after == "closed" {
        assert_eq!(paths, ["/deny"]);
    } else {
        assert!(!late, "a connection with a body still to come stayed open");
        assert!(after.starts_with("HTTP/1.1 403 "), "{after}");
        assert!(after.ends_with("/after"), "{after}");
        assert_eq!(paths, ["/deny", "/after"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unread_request_body_is_never_parsed_as_the_next_request() {
    unread_body_is_never_served(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unread_body_that_arrives_late_is_never_parsed_as_a_request() {
    unread_body_is_never_served(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_kept_unread_past_its_answer_is_never_parsed_as_a_request() {
    // The answer is out and the connection idle a while as the handler
    // still holds the body; the body is dropped unread, then the
    // rest of it arrives. Only a body read to its end may let the connection
    // serve again.
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = tokio::task::spawn_blocking({
        let mut stream = connect(&server);
        move || {
            let head = format!(
                "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                smuggled.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            let answer = read_response(&mut stream);
            std::thread::sleep(Duration::from_millis(200));
            // The server may already have closed: then this write fails.
            let _ = stream.write_all(smuggled.as_bytes());
            // Time for a wrongly reused connection to serve it.
            std::thread::sleep(Duration::from_millis(500));
            answer
        }
    })
    .await
    .unwrap();
    assert_eq!(answer, (200, "/hold".to_owned()));
    let paths: Vec<String> = echo.seen().into_iter().map(|(path, _)| path).collect();
    assert_eq!(paths, ["/hold"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_idle_connections_at_once() {
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let mut stream = connect(&server);
    let stream = tokio::task::spawn_blocking(move || {
        stream
            .write_all(b"GET /read HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut stream).0, 200);
        stream
    })
    .await
    .unwrap();
    // Idle by now; the drain waits for every connection, and an idle
    // one must not hold it for the 10 s drain timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(2), server.shutdown())
        .await
        .expect("the drain finished at once");
    let mut stream = stream;
    assert!(tokio::task::spawn_blocking(move || closed(&mut stream))
        .await
        .unwrap());
}

/// `/big` to a client that reads nothing for 300 ms, so the server is left
/// holding much of the answer long after the handler is done with it. The
/// connection must be neither reused (the rest lost) nor closed before it
/// has written it all; then it serves the next request, or (`close`) ends.
async fn a_large_answer_to_a_slow_reader(close: bool) {
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let (big, after) = tokio::task::spawn_blocking({
        let mut stream = slow_reader(&server);
        move || {
            let connection = if close { "Connection: close\r\n" } else { "" };
            stream
                .write_all(format!("GET /big HTTP/1.1\r\nHost: x\r\n{connection}\r\n").as_bytes())
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let (status, body) = read_response(&mut stream);
            let after = if close {
                closed(&mut stream).then(|| (0, "closed".to_owned()))
            } else {
                stream
                    .write_all(b"GET /read-2 HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                Some(read_response(&mut stream))
            };
            ((status, body.len()), after)
        }
    })
    .await
    .unwrap();
    assert_eq!(big, (200, BIG));
    if close {
        assert_eq!(after, Some((0, "closed".to_owned())));
    } else {
        assert_eq!(after, Some((200, "/read-2 0".to_owned())));
        let seen = echo.seen();
        assert_eq!(seen[0].1, seen[1].1, "both requests on one connection");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_answer_to_a_slow_reader_arrives_whole_before_the_connection_is_reused() {
    a_large_answer_to_a_slow_reader(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_answer_before_connection_close_arrives_whole() {
    a_large_answer_to_a_slow_reader(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_asks_again_at_once_keeps_its_connection() {
    // Each request is written the moment the previous response is read:
    // it must start the next exchange, never slip into the one ending and
    // be answered with `Connection: close`.
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let mut stream = connect(&server);
    let closing = tokio::task::spawn_blocking(move || {
        let mut closing = Vec::new();
        for i in 0..2_000 {
            let request = format!("GET /read-{i} HTTP/1.1\r\nHost: x\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let answer = read_answer(&mut stream, false);
            let body = String::from_utf8_lossy(&answer.body);
            assert_eq!((answer.status, &*body), (200, &*format!("/read-{i} 0")));
            if says_close(&answer) {
                closing.push(i);
            }
        }
        closing
    })
    .await
    .unwrap();
    assert!(
        closing.is_empty(),
        "answered with Connection: close: {closing:?}"
    );
    let seen = echo.seen();
    assert_eq!(seen.len(), 2_000);
    assert!(seen.iter().all(|(_, port)| *port == seen[0].1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_sent_in_pieces_is_answered_without_closing() {
    // A slow client's head arrives in two pieces 200 ms apart, on a new
    // connection and again on one idle after its first request: the
    // connection must wait for it, not shut down half-way through it.
    let echo = Echo::default();
    let server = start(&echo, Duration::from_secs(60)).await;
    let heads = tokio::task::spawn_blocking({
        let mut stream = connect(&server);
        move || {
            let mut heads = Vec::new();
            for i in 0..2 {
                stream.write_all(b"GET /read HTTP/1.1\r\nHo").unwrap();
                std::thread::sleep(Duration::from_millis(200));
                stream.write_all(b"st: x\r\n\r\n").unwrap();
                let answer = read_answer(&mut stream, false);
                heads.push((answer.status, says_close(&answer)));
                if i == 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
            heads
        }
    })
    .await
    .unwrap();
    assert_eq!(heads, [(200, false), (200, false)], "(status, says close)");
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, seen[1].1, "both requests on one connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
    // The client never reads the answer: the connection can be neither
    // reused nor left open for ever.
    let echo = Echo::default();
    let open = Gauge::default();
    let server = start_with(
        &echo,
        ServerOptions {
            idle_timeout: Duration::from_millis(600),
            connections: Some(open.clone()),
            ..ServerOptions::default()
        },
    )
    .await;
    let mut stream = slow_reader(&server);
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut closed_after = None;
    let started = Instant::now();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if open.get() == 0 {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the connection was not closed within 5 s");
    assert!(
        closed_after >= Duration::from_millis(600),
        "{closed_after:?}"
    );
    drop(stream);
}
