//! The catch-all API and the control API.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;
use crate::identity::signed_instance;

#[tokio::test]
async fn api_records_every_call_with_its_credential() {
    let (sandbox, client) = start().await;
    let base = sandbox.base_url();
    let caller = sandbox.mint_token(member()).access_token;
    let stripped = strip(&sandbox, &client, &caller).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = app_token(&sandbox, &client, "inst-1").await;

    let response = client
        .post(format!("{base}/wix-data/v2/items/query?x=1&y=2"))
        .header("authorization", &app)
        .header("x-wix-consistent", "abc")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .json(&json!({"dataCollectionId": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-wix-request-id"));
    assert_eq!(response.headers()["x-wix-consistent"], "abc");
    let echo: Value = response.json().await.unwrap();
    assert_eq!(
        echo,
        json!({"calledAs": {"kind": "app", "instanceId": "inst-1"}, "method": "POST",
            "path": "/wix-data/v2/items/query", "query": "x=1&y=2",
            "body": {"dataCollectionId": "c"}})
    );

    let echo: Value = api(&client, format!("{base}/apps/v1/instance"), Some(&caller))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        echo["calledAs"],
        json!({"kind": "caller", "subjectType": "MEMBER", "subjectId": "member-1",
            "instanceId": "inst-1", "via": "raw"})
    );
    let bearer = format!("Bearer {stripped}");
    let response = api(
        &client,
        format!("{base}/members/v1/members/m"),
        Some(&bearer),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = api(&client, format!("{base}/contacts/v4/contacts/c"), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");

    sandbox.expire_app_tokens();
    let response = api(&client, format!("{base}/apps/v1/instance"), Some(&app)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let fresh = app_token(&sandbox, &client, "inst-1").await;
    let response = api(&client, format!("{base}/apps/v1/instance"), Some(&fresh)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let recorded = sandbox.requests();
    let kinds: Vec<_> = recorded.iter().map(|r| r.credential.clone()).collect();
    assert_eq!(kinds.len(), 6);
    assert_eq!(
        kinds[0],
        Credential::App {
            instance_id: "inst-1".into()
        }
    );
    assert!(matches!(
        &kinds[1],
        Credential::Caller { via: Via::Raw, .. }
    ));
    assert!(matches!(
        &kinds[2],
        Credential::Caller { via: Via::StripBoundSession, subject_id, .. } if subject_id == "member-1"
    ));
    assert_eq!(kinds[3], Credential::None);
    assert_eq!(kinds[4], Credential::Invalid);
    assert!(matches!(kinds[5], Credential::App { .. }));
    let first = &recorded[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.query.as_deref(), Some("x=1&y=2"));
    assert_eq!(first.body, r#"{"dataCollectionId":"c"}"#);
    assert_eq!(header(first, "X-Multi"), ["one", "two"]);
    assert_eq!(header(first, "authorization"), [app.as_str()]);
    assert_eq!(header(&recorded[2], "authorization"), [bearer.as_str()]);
    assert_eq!(sandbox.stats().api_calls, 6);
    sandbox.clear_requests();
    assert!(sandbox.requests().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn api_controls_shape_the_answer() {
    let (sandbox, client) = start().await;
    let caller = sandbox.mint_token(member()).access_token;
    let base = sandbox.base_url();
    let started = Instant::now();
    let url = format!("{base}/x?_sandbox_delay_ms=200&_sandbox_status=503");
    let response = api(&client, url, Some(&caller)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["path"], "/x");
    let url = format!("{base}/x?_sandbox_delay_ms=99999");
    let response = api(&client, url, Some(&caller)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.stats().api_calls, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn control_api_over_http() {
    let (sandbox, client) = start().await;
    let base = sandbox.base_url();
    let (status, minted) = post(&client, format!("{base}/_sandbox/tokens"),
        json!({"subjectType": "VISITOR", "subjectId": "v-1", "instanceId": "inst-1", "ttlSeconds": 60})).await;
    assert_eq!(status, StatusCode::OK);
    let minted: MintedToken = serde_json::from_value(minted).unwrap();
    assert!((minted.exp - state::now() - 60).abs() <= 1);
    let (status, _) = post(
        &client,
        format!("{base}/_sandbox/tokens"),
        json!({"subjectId": "v"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    api(&client, format!("{base}/a"), Some(&minted.access_token)).await;
    let recorded: Vec<RecordedRequest> = client
        .get(format!("{base}/_sandbox/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded, sandbox.requests());
    assert_eq!(recorded.len(), 1);
    let stats: Value = client
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({"tokenInfoCalls": 0, "clientCredentialsCalls": 0,
        "stripBoundSessionCalls": 0, "apiCalls": 1})
    );
    let response = client
        .delete(format!("{base}/_sandbox/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(sandbox.requests().is_empty());

    let (status, _) = post(
        &client,
        format!("{base}/_sandbox/revoke"),
        json!({"token": minted.access_token}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        token_info(&sandbox, &client, &minted.access_token).await.1["active"],
        false
    );

    let faults = format!("{base}/_sandbox/faults");
    let (status, _) = post(
        &client,
        faults.clone(),
        json!({"tokenInfo": {"status": 502}}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        token_info(&sandbox, &client, "t").await.0,
        StatusCode::BAD_GATEWAY
    );
    post(&client, faults.clone(), json!({"tokenInfo": "hang"})).await;
    assert_eq!(sandbox.shared.token_info_fault(), Some(Fault::Hang));
    post(&client, faults, json!({"tokenInfo": null})).await;
    assert_eq!(token_info(&sandbox, &client, "t").await.0, StatusCode::OK);

    let app = app_token(&sandbox, &client, "inst-1").await;
    let (status, _) = post(
        &client,
        format!("{base}/_sandbox/expire-app-tokens"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        api(&client, format!("{base}/a"), Some(&app)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let (status, answer) = post(
        &client,
        format!("{base}/_sandbox/signed-instance"),
        json!({"instanceId": "inst-1", "uid": "u"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let verified = signed_instance::verify(
        answer["instance"].as_str().unwrap(),
        &Secret::new(APP_SECRET),
    )
    .unwrap();
    assert_eq!(verified.instance_id.as_deref(), Some("inst-1"));
    let direct = sandbox.signed_instance(json!({"instanceId": "inst-2"}));
    assert!(signed_instance::verify(&direct, &Secret::new(APP_SECRET)).is_ok());
    let (status, _) = post(
        &client,
        format!("{base}/_sandbox/signed-instance"),
        json!([1]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let response = client
        .get(format!("{base}/_sandbox/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .get(format!("{base}/_sandbox/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        sandbox.stats().api_calls,
        2,
        "control calls are not API calls"
    );
    sandbox.shutdown().await;
}
