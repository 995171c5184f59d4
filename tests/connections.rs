//! A connection is busy from a request's arrival until its response body is
//! done, however the exchange ends: idle timeouts never cut a download, and a
//! client that gives up mid-request frees everything and is still logged.

mod common;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::gauge::Gauge;
use wix_elevator::{
    body::{self, Body},
    server::{Handler, IncomingBody, Server, ServerOptions},
};

/// How the test server answers every request.
enum Answers {
    /// After 30 s.
    Late,
    /// With 20 bytes, one every 100 ms.
    Streaming,
}

impl Handler for Answers {
    type Session = ();

    async fn handle(
        &self,
        _request: Request<IncomingBody>,
        _peer: SocketAddr,
        _: &mut (),
    ) -> Response<Body> {
        match self {
            Answers::Late => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Response::new(body::full("late"))
            }
            Answers::Streaming => {
                let chunks = futures::stream::unfold(0u32, |i| async move {
                    if i == 20 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, body::BoxError>(Frame::data(Bytes::from_static(b"x"))),
                        i + 1,
                    ))
                });
                Response::new(StreamBody::new(chunks).boxed())
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_timeout_never_cuts_a_response_still_streaming() {
    let server = Server::start(
        common::loopback().await,
        Answers::Streaming,
        ServerOptions {
            idle_timeout: Duration::from_millis(300),
            ..ServerOptions::default()
        },
    );
    let response = reqwest::get(format!("http://{}/", server.local_addr()))
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_stream_leaves_the_connection_idle_and_closable() {
    let open = Gauge::default();
    let server = Server::start(
        common::loopback().await,
        Answers::Late,
        ServerOptions {
            idle_timeout: Duration::from_millis(200),
            connections: Some(open.clone()),
            ..ServerOptions::default()
        },
    );
    let stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get("http://gateway/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    // Start the request, then give up on it: hyper sends RST_STREAM.
    let _ = tokio::time::timeout(Duration::from_millis(100), sender.send_request(request)).await;
    let mut closed = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if open.get() == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the idle connection was closed after the reset");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_client_abandons_is_logged_and_leaves_no_trace_in_flight() {
    let h = common::Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let send = client
        .get(format!(
            "{}/members/v1/members/member-1?fieldsets=FULL&_sandbox_delay_ms=1000",
            h.url
        ))
        .header("authorization", &member)
        .send();
    let _ = tokio::time::timeout(Duration::from_millis(400), send).await;
    let records = h.decision_records(1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], 499);
    assert_eq!(records[0]["reason"], "client_closed");
    assert_eq!(records[0]["rule"], "member-reads-own-profile");
    let metrics = h.gateway.metrics().render();
    assert!(
        metrics.contains("wix_elevator_in_flight_requests 0\n"),
        "{metrics}"
    );
    assert_eq!(h.sandbox.requests().len(), 1);
}
