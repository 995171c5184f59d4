//! End to end: who may call, and what happens when Wix cannot say.

mod common;

use std::{io::Write, time::Duration};

use common::{assert_elevated, wire, wix_error, Harness, INSTANCE};
use wix_elevator::sandbox::{Credential, Fault, MintRequest};

const OWN_PROFILE: &str = "/members/v1/members/member-1?fieldsets=FULL";

fn member_token(h: &Harness, adjust: impl FnOnce(&mut MintRequest)) -> String {
    let mut request = MintRequest {
        subject_type: "MEMBER".into(),
        subject_id: "member-1".into(),
        instance_id: Some(INSTANCE.into()),
        ..MintRequest::default()
    };
    adjust(&mut request);
    h.mint(request)
}

#[tokio::test]
async fn tokens_wix_would_not_vouch_for_are_401() {
    let h = Harness::start().await;
    let revoked = member_token(&h, |_| {});
    h.sandbox.revoke(&revoked);
    let cases = [
        (
            "another app",
            member_token(&h, |r| r.client_id = Some("other-app".into())),
        ),
        ("expired", member_token(&h, |r| r.ttl_seconds = Some(-5))),
        ("revoked", revoked),
        ("no instance", member_token(&h, |r| r.instance_id = None)),
        (
            "an app token",
            member_token(&h, |r| r.subject_type = "APP".into()),
        ),
        (
            "unknown subject",
            member_token(&h, |r| r.subject_type = "UNKNOWN".into()),
        ),
        ("unknown token", "OauthNG.JWS.not.a.token".to_owned()),
    ];
    for (what, token) in cases {
        let (status, code, _) = wix_error(h.get(OWN_PROFILE, &token).await).await;
        assert_eq!((status, code.as_str()), (401, "UNAUTHENTICATED"), "{what}");
    }
    let response = h
        .client
        .get(format!("{}{OWN_PROFILE}", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wix_error(response).await.0, 401, "no token");
    assert!(h.sandbox.requests().is_empty());
    assert_eq!(h.sandbox.stats().client_credentials_calls, 0);
}

/// Sends `GET OWN_PROFILE` with each of `tokens` in turn over one
/// keep-alive connection to `h`, as fast as answers come; their statuses.
async fn over_one_connection(h: &Harness, tokens: Vec<String>) -> Vec<u16> {
    let addr = h.server.local_addr();
    tokio::task::spawn_blocking(move || {
        let mut stream = wire::connect(addr);
        tokens
            .iter()
            .map(|token| {
                let request = format!(
                    "GET {OWN_PROFILE} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n"
                );
                stream.write_all(request.as_bytes()).unwrap();
                wire::read_answer(&mut stream, false).status
            })
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_sharing_one_connection_are_each_identified() {
    // A busy connection remembers the last token it presented; a pooling
    // proxy in front may send several callers' requests over it.
    let h = Harness::start().await;
    let member = member_token(&h, |_| {});
    let other = member_token(&h, |r| r.subject_id = "member-2".into());
    let tokens = [&member, &other, "OauthNG.JWS.not.a.token", &member, &other];
    let statuses = over_one_connection(&h, tokens.map(|t| t.to_owned()).to_vec()).await;
    assert_eq!(statuses, [200, 403, 401, 200, 403]);
    // Only member-1's own two requests reached Wix, each elevated.
    let requests = h.sandbox.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.path, "/members/v1/members/member-1");
        assert_elevated(request, &member);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_token_is_asked_about_again_when_the_cache_would() {
    // Cached answers last 1 s here. The token is revoked after its first
    // use; requests keep coming on the same connection, 20 ms apart, so
    // that it stays busy and keeps remembering the token.
    let h = Harness::build(
        common::POLICIES,
        |config| config.cache.identity_ttl = Duration::from_secs(1),
        |_| {},
    )
    .await;
    let token = member_token(&h, |_| {});
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    h.sandbox.revoke(&token);
    let addr = h.server.local_addr();
    let statuses = tokio::task::spawn_blocking(move || {
        let mut stream = wire::connect(addr);
        let request =
            format!("GET {OWN_PROFILE} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n");
        let mut statuses = Vec::new();
        // At most 4 s: a remembered answer that outlived the cache's would
        // keep saying 200.
        for _ in 0..200 {
            stream.write_all(request.as_bytes()).unwrap();
            statuses.push(wire::read_answer(&mut stream, false).status);
            if statuses.last() != Some(&200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        statuses
    })
    .await
    .unwrap();
    assert_eq!(statuses.last(), Some(&401), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|&s| s == 200));
    assert_eq!(h.sandbox.stats().token_info_calls, 2);
}

#[tokio::test]
async fn a_bearer_prefix_is_accepted() {
    let h = Harness::start().await;
    let token = member_token(&h, |_| {});
    let response = h.get(OWN_PROFILE, &format!("Bearer {token}")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn token_info_down_is_503_never_an_allow_and_never_cached() {
    let h = Harness::start().await;
    let token = member_token(&h, |_| {});
    h.sandbox.set_token_info_fault(Some(Fault::Status(503)));
    let (status, code, _) = wix_error(h.get(OWN_PROFILE, &token).await).await;
    assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"));
    h.sandbox.set_token_info_fault(Some(Fault::Hang));
    let (status, _, _) = wix_error(h.get(OWN_PROFILE, &token).await).await;
    assert_eq!(status, 503, "a token-info timeout");
    assert!(h.sandbox.requests().is_empty());

    h.sandbox.set_token_info_fault(None);
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    assert_eq!(h.sandbox.requests().len(), 1);
}

#[tokio::test]
async fn a_burst_during_a_token_info_outage_shares_one_failed_call() {
    let h = Harness::start().await;
    let token = member_token(&h, |_| {});
    // token-info hangs past the gateway's 1 s identity timeout: the requests
    // that arrive meanwhile wait for that one call and share its failure
    // instead of each retrying it in turn.
    h.sandbox.set_token_info_fault(Some(Fault::Hang));
    let requests = (0..20).map(|_| h.get(OWN_PROFILE, &token));
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status() == 503));
    assert_eq!(h.sandbox.stats().token_info_calls, 1);
    assert!(h.sandbox.requests().is_empty());
    // The failure was not kept: the next request asks again.
    h.sandbox.set_token_info_fault(None);
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    assert_eq!(h.sandbox.stats().token_info_calls, 2);
}

#[tokio::test]
async fn a_burst_of_first_requests_costs_one_token_info_call_and_one_mint() {
    let h = Harness::start().await;
    let token = member_token(&h, |_| {});
    let requests = (0..100).map(|_| h.get(OWN_PROFILE, &token));
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    let stats = h.sandbox.stats();
    assert_eq!(stats.token_info_calls, 1);
    assert_eq!(stats.client_credentials_calls, 1);
    assert_eq!(stats.api_calls, 100);
}

#[tokio::test]
async fn the_app_token_is_refreshed_before_it_expires() {
    // Tokens live 4 s and are refreshed 1 s early: a request at 3.2 s must
    // already carry a new token, minted while the old one was still valid.
    let h = Harness::build(
        common::POLICIES,
        |config| config.cache.app_token_refresh_margin = Duration::from_secs(1),
        |sandbox| sandbox.app_token_ttl = Duration::from_secs(4),
    )
    .await;
    let token = member_token(&h, |_| {});
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    assert_eq!(
        h.sandbox.stats().client_credentials_calls,
        1,
        "reused while fresh"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(h.get(OWN_PROFILE, &token).await.status(), 200);
    assert_eq!(h.sandbox.stats().client_credentials_calls, 2);
    let received = h.sandbox.requests();
    let first = common::first_header(&received[0], "authorization");
    let last = common::first_header(&received[2], "authorization");
    assert_ne!(first, last);
    assert!(received
        .iter()
        .all(|r| matches!(r.credential, Credential::App { .. })));
}

#[tokio::test]
async fn an_upstream_401_re_mints_the_app_token_and_retries_once() {
    let h = Harness::start().await;
    let visitor = h.token("VISITOR", "visitor-1");
    let body = r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":5}}}"#;
    assert_eq!(
        h.post_json("/wix-data/v2/items/query", &visitor, body)
            .await
            .status(),
        200
    );
    h.sandbox.expire_app_tokens();
    h.sandbox.clear_requests();

    let response = h
        .post_json("/wix-data/v2/items/query", &visitor, body)
        .await;
    assert_eq!(response.status(), 200);
    let received = h.sandbox.requests();
    assert_eq!(received.len(), 2, "one refused attempt, one retry");
    assert_eq!(received[0].credential, Credential::Invalid);
    assert!(matches!(received[1].credential, Credential::App { .. }));
    assert_eq!(received[1].body, body, "the retry sends the same bytes");
    assert_eq!(h.sandbox.stats().client_credentials_calls, 2);
}

#[tokio::test]
async fn a_401_that_survives_the_retry_is_returned_not_retried_again() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let response = h
        .get(&format!("{OWN_PROFILE}&_sandbox_status=401"), &member)
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(h.sandbox.requests().len(), 2);
}
