//! End to end: the request line and headers as they cross the gateway,
//! CORS, and HTTP/2 from clients.

mod common;

use common::{wix_error, Harness};
use wix_elevator::sandbox::header;

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_request_lines_are_400_and_nothing_is_forwarded() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let targets = [
        "/members/v1/members/member-1%2F..%2Fmember-2?fieldsets=FULL",
        "/members/v1/members/%2e%2e/member-1?fieldsets=FULL",
        "/members/v1/members/../members/member-1?fieldsets=FULL",
        "/members/v1//members/member-1?fieldsets=FULL",
        "/members/v1/members/member-1%5C?fieldsets=FULL",
        "/members/v1/members/member-1%00?fieldsets=FULL",
        "/members/v1/members/member-1?fieldsets=%FULL",
        "/members/v1/members/member-1%ff?fieldsets=FULL",
    ];
    for target in targets {
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: {member}\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = tokio::task::block_in_place(|| h.raw(&raw));
        assert_eq!(status, 400, "{target}: {answer}");
        assert!(answer.contains("INVALID_ARGUMENT"), "{answer}");
    }
    let smuggling = [
        "Host: a\r\nHost: b\r\n",
        "Host: gw\r\nAuthorization: x\r\n",
        "Host: gw\r\nUpgrade: websocket\r\nConnection: upgrade\r\n",
        "Host: gw\r\nTransfer-Encoding: gzip, chunked\r\n",
    ];
    for headers in smuggling {
        let raw = format!(
            "GET /members/v1/members/member-1?fieldsets=FULL HTTP/1.1\r\n{headers}Authorization: {member}\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = tokio::task::block_in_place(|| h.raw(&raw));
        assert_eq!(status, 400, "{headers:?}: {answer}");
    }
    assert!(h.sandbox.requests().is_empty());
    assert_eq!(
        h.sandbox.stats().token_info_calls,
        0,
        "rejected before identity"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_matched_path_is_the_forwarded_path() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    // %6D is "m": decoded once for matching, forwarded in its one canonical form.
    let raw = format!(
        "GET /members/v1/members/%6Dember-1?field%73ets=FULL HTTP/1.1\r\nHost: gw\r\nAuthorization: {member}\r\nConnection: close\r\n\r\n"
    );
    let (status, answer) = tokio::task::block_in_place(|| h.raw(&raw));
    assert_eq!(status, 200, "{answer}");
    // A pass-through rule, which may carry any parameter: `+` is a space.
    let raw = format!(
        "POST /members/v1/members/query?x=a+b&y=%2B HTTP/1.1\r\nHost: gw\r\nAuthorization: {member}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, answer) = tokio::task::block_in_place(|| h.raw(&raw));
    assert_eq!(status, 200, "{answer}");
    let received = h.sandbox.requests();
    assert_eq!(received[0].path, "/members/v1/members/member-1");
    assert_eq!(received[0].query.as_deref(), Some("fieldsets=FULL"));
    assert_eq!(received[1].query.as_deref(), Some("x=a%20b&y=%2B"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_and_connection_listed_headers_never_reach_wix() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let raw = format!(
        "GET /members/v1/members/member-1?fieldsets=FULL HTTP/1.1\r\n\
         Host: gw\r\n\
         Authorization: {member}\r\n\
         Connection: close, Accept-Language, X-Wix-Consistent\r\n\
         Accept-Language: fr\r\n\
         X-Wix-Consistent: listed-so-dropped\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         Proxy-Authorization: Basic abc\r\n\
         Cookie: session=1\r\n\
         X-Forwarded-For: 10.0.0.1\r\n\
         Accept: application/json\r\n\r\n"
    );
    let (status, answer) = tokio::task::block_in_place(|| h.raw(&raw));
    assert_eq!(status, 200, "{answer}");
    let received = &h.sandbox.requests()[0];
    for name in [
        "accept-language",
        "x-wix-consistent",
        "keep-alive",
        "te",
        "proxy-authorization",
        "cookie",
        "x-forwarded-for",
    ] {
        assert!(header(received, name).is_empty(), "{name} reached Wix");
    }
    assert_eq!(header(received, "accept"), ["application/json"]);
    assert!(header(received, "connection")
        .iter()
        .all(|v| !v.contains("accept-language")));
}

#[tokio::test]
async fn cors_preflights_are_answered_for_allowed_origins_only() {
    let h = Harness::start().await;
    let preflight = |origin: &'static str| {
        h.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/wix-data/v2/items/query", h.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let response = preflight("https://site.example.com").await.unwrap();
    assert_eq!(response.status(), 204);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://site.example.com"
    );
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(!headers.contains_key("access-control-allow-credentials"));

    let response = preflight("https://evil.example.com").await.unwrap();
    assert_eq!(wix_error(response).await.0, 403);

    // Actual requests from the allowed origin carry the CORS headers, errors too.
    let visitor = h.token("VISITOR", "visitor-1");
    let response = h
        .client
        .get(format!("{}/nowhere", h.url))
        .header("origin", "https://site.example.com")
        .header("authorization", &visitor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://site.example.com"
    );
    assert!(h.sandbox.requests().is_empty());
}

#[tokio::test]
async fn http2_clients_are_served() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{}/members/v1/members/member-1?fieldsets=FULL",
            h.url
        ))
        .header("authorization", &member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert!(matches!(
        received[0].credential,
        wix_elevator::sandbox::Credential::App { .. }
    ));
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .get(
            "/members/v1/members/member-1?fieldsets=FULL&_sandbox_delay_ms=5000",
            &member,
        )
        .await;
    let (status, code, _) = wix_error(response).await;
    assert_eq!((status, code.as_str()), (504, "DEADLINE_EXCEEDED"));
}
