//! End to end: the gateway and Wix never read one request two ways, and
//! slow or idle clients cannot hold the gateway's resources.

mod common;

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use common::{Harness, POLICIES};
use wix_elevator::sandbox::Fault;

#[tokio::test]
async fn absent_holds_for_every_spelling_wix_accepts() {
    let policy = r#"
rules:
  - id: reviews-query
    match: { methods: [POST], path: /wix-data/v2/items/query }
    callers: [VISITOR]
    mode: elevate
    when:
      body.dataCollectionId: { equals: Reviews }
      body.query.cursorPaging: { absent: true }
"#;
    let h = Harness::build(policy, |_| {}, |_| {}).await;
    let visitor = h.token("VISITOR", "v1");
    for body in [
        r#"{"dataCollectionId":"Reviews","query":{"cursorPaging":{"limit":1000}}}"#,
        r#"{"dataCollectionId":"Reviews","query":{"cursor_paging":{"limit":1000}}}"#,
        r#"{"data_collection_id":"Secrets","dataCollectionId":"Reviews","query":{}}"#,
    ] {
        let response = h
            .post_json("/wix-data/v2/items/query", &visitor, body)
            .await;
        assert!(
            [400, 403].contains(&response.status().as_u16()),
            "{body}: {}",
            response.status()
        );
    }
    // The snake_case spelling of a required field satisfies it, since Wix
    // reads it as that field.
    let response = h
        .post_json(
            "/wix-data/v2/items/query",
            &visitor,
            r#"{"data_collection_id":"Reviews","query":{}}"#,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(h.sandbox.requests().len(), 1);
}

#[tokio::test]
async fn repeated_query_parameters_count_under_every_spelling() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .get(
            "/members/v1/members/member-1?fieldsets=FULL&field_sets=SECRET",
            &member,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(h.sandbox.requests().is_empty());
}

#[tokio::test]
async fn a_rate_limited_token_info_is_unavailable_not_invalid() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    h.sandbox.set_token_info_fault(Some(Fault::Status(429)));
    let path = "/members/v1/members/member-1?fieldsets=FULL";
    assert_eq!(h.get(path, &member).await.status(), 503);
    h.sandbox.set_token_info_fault(None);
    assert_eq!(
        h.get(path, &member).await.status(),
        200,
        "nothing was cached"
    );
}

#[tokio::test]
async fn a_custom_verb_never_rides_in_a_capture() {
    let policy = r#"
rules:
  - id: read-public-item
    match: { methods: [GET], path: "/things/v1/things/{id}" }
    callers: [VISITOR]
    mode: elevate
    when:
      path.id: { prefix: "public-" }
"#;
    let h = Harness::build(policy, |_| {}, |_| {}).await;
    let visitor = h.token("VISITOR", "v1");
    assert_eq!(
        h.get("/things/v1/things/public-1:export", &visitor)
            .await
            .status(),
        403
    );
    assert_eq!(
        h.get("/things/v1/things/public-1", &visitor).await.status(),
        200
    );
    assert_eq!(h.sandbox.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_instance_never_travels_upstream() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let instance = h
        .sandbox
        .signed_instance(serde_json::json!({"instanceId": "x"}));
    let response = h
        .get(
            &format!("/members/v1/members/member-1?fieldsets=FULL&instance={instance}"),
            &member,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        h.sandbox.requests()[0].query.as_deref(),
        Some("fieldsets=FULL")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_content_types_are_refused() {
    let h = Harness::start().await;
    let visitor = h.token("VISITOR", "v1");
    let body = r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":10}}}"#;
    let raw = format!(
        "POST /wix-data/v2/items/query HTTP/1.1\r\nHost: gw\r\nAuthorization: {visitor}\r\nContent-Type: application/json\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _) = tokio::task::block_in_place(|| h.raw(&raw));
    assert_eq!(status, 400);
    assert!(h.sandbox.requests().is_empty(), "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_cut_off() {
    let h = Harness::build(
        POLICIES,
        |config| config.timeouts.body_read = Duration::from_millis(500),
        |_| {},
    )
    .await;
    let visitor = h.token("VISITOR", "v1");
    let addr = h.server.local_addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /wix-data/v2/items/query HTTP/1.1\r\nHost: gw\r\nAuthorization: {visitor}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"a\":"
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(h.sandbox.requests().is_empty());
}

/// Opens a connection, sends `hello`, and reports whether the gateway
/// closed it within `within`.
fn closed_within(addr: std::net::SocketAddr, hello: &[u8], within: Duration) -> bool {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(hello).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < within {
        if let Ok(0) = stream.read(&mut buf) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed() {
    let h = Harness::build(
        POLICIES,
        |config| {
            config.timeouts.header_read = Duration::from_secs(1);
            config.timeouts.idle = Duration::from_secs(1);
        },
        |_| {},
    )
    .await;
    let addr = h.server.local_addr();
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let (h1, h2) = tokio::task::spawn_blocking(move || {
        (
            closed_within(addr, b"GET /x HTTP/1.1\r\n", Duration::from_secs(5)),
            closed_within(addr, &preface, Duration::from_secs(5)),
        )
    })
    .await
    .unwrap();
    assert!(h1, "a half-sent HTTP/1.1 request was not closed");
    assert!(h2, "an idle HTTP/2 connection was not closed");
}

#[tokio::test]
async fn an_elevated_request_carries_only_the_query_parameters_its_rule_names() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    for path in [
        "/members/v1/members/member-1?fieldsets=FULL&id=member-2",
        "/members/v1/members/member-1?fieldsets=FULL&memberId=member-2",
    ] {
        assert_eq!(h.get(path, &member).await.status(), 403, "{path}");
    }
    let visitor = h.token("VISITOR", "v1");
    let response = h
        .post_json(
            "/wix-data/v2/items/query?dataCollectionId=Secrets",
            &visitor,
            r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":10}}}"#,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(h.sandbox.requests().is_empty());

    // Named by a condition (any spelling) or by allow_query: forwarded.
    let response = h
        .get(
            "/members/v1/members/member-1?field_sets=FULL&_sandbox_status=200",
            &member,
        )
        .await;
    assert_eq!(response.status(), 200);
    // A pass-through call acts as the caller: any parameter goes.
    let response = h
        .post_json("/members/v1/members/query?anything=1", &member, "{}")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(h.sandbox.requests().len(), 2);
}
