//! End to end: what the caller asks, what reaches Wix (the sandbox), and with
//! which credential.

mod common;

use common::{assert_elevated, wix_error, Harness, INSTANCE};
use wix_elevator::sandbox::{header, Credential, MintRequest, Via};

#[tokio::test]
async fn an_allowed_elevated_call_reaches_wix_with_the_app_token_of_the_callers_instance() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .get("/members/v1/members/member-1?fieldsets=FULL", &member)
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-wix-request-id"));
    assert!(response.headers().contains_key("x-request-id"));

    let received = h.sandbox.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/members/v1/members/member-1");
    assert_eq!(request.query.as_deref(), Some("fieldsets=FULL"));
    assert_elevated(request, &member);
    assert_eq!(
        header(request, "host"),
        [h.sandbox.local_addr().to_string()]
    );
}

#[tokio::test]
async fn elevation_acts_for_the_callers_own_instance_only() {
    let h = Harness::start().await;
    let other = h.mint(MintRequest {
        subject_type: "MEMBER".into(),
        subject_id: "member-9".into(),
        instance_id: Some("instance-9".into()),
        ..MintRequest::default()
    });
    // A query parameter the rule does not name is refused on an elevated
    // call, so a client cannot name an instance there.
    let response = h
        .get(
            "/members/v1/members/member-9?fieldsets=PUBLIC&instance_id=instance-1",
            &other,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(h.sandbox.requests().is_empty());
    // A header naming another instance changes nothing.
    let response = h
        .client
        .get(format!(
            "{}/members/v1/members/member-9?fieldsets=PUBLIC",
            h.url
        ))
        .header("authorization", &other)
        .header("x-wix-instance-id", INSTANCE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert_eq!(
        received[0].credential,
        Credential::App {
            instance_id: "instance-9".into()
        }
    );
    assert!(header(&received[0], "x-wix-instance-id").is_empty());
}

#[tokio::test]
async fn a_pass_through_call_reaches_wix_as_the_caller() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .post_json("/members/v1/members/query", &member, r#"{"query":{}}"#)
        .await;
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].credential,
        Credential::Caller {
            subject_type: "MEMBER".into(),
            subject_id: "member-1".into(),
            instance_id: Some(INSTANCE.into()),
            via: Via::StripBoundSession,
        }
    );
    assert_eq!(received[0].body, r#"{"query":{}}"#);
    assert_eq!(h.sandbox.stats().strip_bound_session_calls, 1);
    assert_eq!(h.sandbox.stats().client_credentials_calls, 0);
}

#[tokio::test]
async fn raw_pass_through_forwards_the_callers_token_as_received() {
    let h = Harness::build(
        common::POLICIES,
        |config| config.wix.pass_through = wix_elevator::config::PassThroughMode::Raw,
        |_| {},
    )
    .await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .post_json("/members/v1/members/query", &member, "{}")
        .await;
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert_eq!(header(&received[0], "authorization"), [member.as_str()]);
    assert!(matches!(
        received[0].credential,
        Credential::Caller { via: Via::Raw, .. }
    ));
    assert_eq!(h.sandbox.stats().strip_bound_session_calls, 0);
}

#[tokio::test]
async fn no_rule_is_403_and_nothing_reaches_wix() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    for path in ["/contacts/v4/labels", "/members/v1/members", "/"] {
        let response = h.get(path, &member).await;
        let (status, code, id) = wix_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "PERMISSION_DENIED"),
            "{path}"
        );
        assert!(!id.is_empty());
    }
    // Routing happens before identity: no token-info call either.
    assert_eq!(h.sandbox.stats().token_info_calls, 0);
    assert!(h.sandbox.requests().is_empty());
}

#[tokio::test]
async fn each_failed_condition_kind_is_403_and_nothing_reaches_wix() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let visitor = h.token("VISITOR", "visitor-1");
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "path capture equals caller field",
            h.client.get(format!(
                "{}/members/v1/members/member-2?fieldsets=FULL",
                h.url
            )),
        ),
        (
            "query one_of",
            h.client.get(format!(
                "{}/members/v1/members/member-1?fieldsets=ALL",
                h.url
            )),
        ),
        (
            "every value of a repeated query parameter",
            h.client.get(format!(
                "{}/members/v1/members/member-1?fieldsets=FULL&fieldsets=ALL",
                h.url
            )),
        ),
        (
            "query parameter missing",
            h.client
                .get(format!("{}/members/v1/members/member-1", h.url)),
        ),
        (
            "header prefix",
            h.client
                .get(format!("{}/contacts/v4/contacts/abcdef12-3456", h.url))
                .header("x-app-client", "other-app"),
        ),
        (
            "path regex",
            h.client
                .get(format!("{}/contacts/v4/contacts/not-hex", h.url))
                .header("x-app-client", "site-1"),
        ),
        (
            "query absent",
            h.client
                .get(format!(
                    "{}/contacts/v4/contacts/abcdef12-3456?debug=1",
                    h.url
                ))
                .header("x-app-client", "site-1"),
        ),
        (
            "body equals",
            h.client
                .post(format!("{}/wix-data/v2/items/query", h.url))
                .header("content-type", "application/json")
                .body(r#"{"dataCollectionId":"Secrets","query":{"paging":{"limit":10}}}"#),
        ),
        (
            "body numeric max",
            h.client
                .post(format!("{}/wix-data/v2/items/query", h.url))
                .header("content-type", "application/json")
                .body(r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":1000}}}"#),
        ),
        (
            "body field of the wrong type",
            h.client
                .post(format!("{}/wix-data/v2/items/query", h.url))
                .header("content-type", "application/json")
                .body(r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":"10"}}}"#),
        ),
        (
            "body field missing",
            h.client
                .post(format!("{}/wix-data/v2/items/query", h.url))
                .header("content-type", "application/json")
                .body(r#"{"dataCollectionId":"Reviews"}"#),
        ),
    ];
    for (what, request) in cases {
        let response = request
            .header("authorization", &member)
            .send()
            .await
            .unwrap();
        let (status, code, _) = wix_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "PERMISSION_DENIED"),
            "{what}"
        );
    }
    // Caller type not admitted by the rule.
    let response = h
        .get("/members/v1/members/visitor-1?fieldsets=FULL", &visitor)
        .await;
    assert_eq!(response.status(), 403);
    assert!(
        h.sandbox.requests().is_empty(),
        "a denied request reached Wix"
    );

    // And the same shapes pass when the conditions hold.
    let response = h
        .post_json(
            "/wix-data/v2/items/query",
            &visitor,
            r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":100}}}"#,
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = h
        .client
        .get(format!("{}/contacts/v4/contacts/abcdef12-3456", h.url))
        .header("x-app-client", "site-1")
        .header("authorization", &member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.sandbox.requests().len(), 2);
}

#[tokio::test]
async fn the_inspected_body_is_exactly_the_forwarded_body() {
    let h = Harness::start().await;
    let visitor = h.token("VISITOR", "visitor-1");
    let body = "{ \"dataCollectionId\" : \"Reviews\",\n \"query\": {\"paging\": {\"limit\": 5}}, \"x\": \"\\u00e9\" }";
    let response = h
        .post_json("/wix-data/v2/items/query", &visitor, body)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(h.sandbox.requests()[0].body, body);

    for ambiguous in [
        r#"{"dataCollectionId":"Reviews","dataCollectionId":"Secrets","query":{"paging":{"limit":5}}}"#,
        r#"{"dataCollectionId":"Reviews","data_collection_id":"Secrets","query":{"paging":{"limit":5}}}"#,
        r#"{"dataCollectionId":"Reviews""#,
    ] {
        let response = h
            .post_json("/wix-data/v2/items/query", &visitor, ambiguous)
            .await;
        let (status, code, _) = wix_error(response).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "INVALID_ARGUMENT"),
            "{ambiguous}"
        );
    }
    assert_eq!(h.sandbox.requests().len(), 1);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_non_json_bodies_are_415() {
    let h = Harness::start().await;
    let visitor = h.token("VISITOR", "visitor-1");
    let member = h.token("MEMBER", "member-1");
    let big = format!(
        r#"{{"dataCollectionId":"Reviews","query":{{"paging":{{"limit":5}}}},"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    let response = h
        .post_json("/wix-data/v2/items/query", &visitor, &big)
        .await;
    assert_eq!(wix_error(response).await.0, 413);
    // Also when the client does not declare a length.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(big.clone().into_bytes())]);
    let response = h
        .client
        .post(format!("{}/wix-data/v2/items/query", h.url))
        .header("authorization", &visitor)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // An elevated rule that does not read the body still buffers it (bounded).
    let response = h
        .client
        .get(format!(
            "{}/members/v1/members/member-1?fieldsets=FULL",
            h.url
        ))
        .header("authorization", &member)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = h
        .client
        .post(format!("{}/wix-data/v2/items/query", h.url))
        .header("authorization", &visitor)
        .header("content-type", "text/plain")
        .body(r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":5}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wix_error(response).await.0, 415);
    assert!(h.sandbox.requests().is_empty());
}

#[tokio::test]
async fn x_wix_consistent_and_request_ids_pass_through() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .client
        .get(format!(
            "{}/members/v1/members/member-1?fieldsets=FULL",
            h.url
        ))
        .header("authorization", &member)
        .header("x-wix-consistent", "consistency-token")
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-wix-consistent"], "consistency-token");
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let received = &h.sandbox.requests()[0];
    assert_eq!(header(received, "x-wix-consistent"), ["consistency-token"]);
    assert_eq!(header(received, "x-request-id"), ["req-42"]);
}

#[tokio::test]
async fn a_signed_instance_identifies_the_caller_where_a_rule_allows_it() {
    let h = Harness::start().await;
    let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let instance = h.sandbox.signed_instance(serde_json::json!({
        "instanceId": "instance-7", "appDefId": common::APP_ID, "signDate": now, "uid": "member-7"
    }));
    let response = h
        .client
        .get(format!("{}/apps/v1/instance", h.url))
        .query(&[("instance", &instance)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert_eq!(
        received[0].credential,
        Credential::App {
            instance_id: "instance-7".into()
        }
    );
    assert_eq!(received[0].query, None, "the signed instance was forwarded");

    // Tampered, foreign or absent: 401, and nothing more reaches Wix.
    let forged = format!("{}x", instance);
    let foreign = h.sandbox.signed_instance(serde_json::json!({
        "instanceId": "instance-7", "appDefId": "other-app", "signDate": now
    }));
    for bad in [forged.as_str(), foreign.as_str()] {
        let response = h
            .client
            .get(format!("{}/apps/v1/instance", h.url))
            .query(&[("instance", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = h
        .client
        .get(format!("{}/apps/v1/instance", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(h.sandbox.requests().len(), 1);
}
