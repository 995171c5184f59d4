//! token-info, the two grants and token-info faults.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn token_info_reports_active_revoked_and_unknown_tokens() {
    let (sandbox, client) = start().await;
    let minted = sandbox.mint_token(member());
    assert!(minted.access_token.starts_with("OauthNG.JWS."));
    assert_eq!(minted.access_token.split('.').count(), 5);
    assert_ne!(
        minted.access_token,
        sandbox.mint_token(member()).access_token
    );

    let (status, info) = token_info(&sandbox, &client, &minted.access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["active"], true);
    assert_eq!(info["subjectType"], "MEMBER");
    assert_eq!(info["subjectId"], "member-1");
    assert_eq!(info["clientId"], APP_ID);
    assert_eq!(info["instanceId"], "inst-1");
    assert_eq!(info["siteId"], "site-1");
    assert_eq!(info["exp"], minted.exp);
    assert!(info["iat"].as_i64().unwrap() < minted.exp);

    let bare = sandbox.mint_token(MintRequest {
        subject_type: "VISITOR".into(),
        subject_id: "v".into(),
        client_id: Some(String::new()),
        ..Default::default()
    });
    let (_, info) = token_info(&sandbox, &client, &bare.access_token).await;
    assert_eq!(info["active"], true);
    for absent in ["clientId", "siteId", "instanceId"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }

    // Expiry shows only through exp, so the gateway must check it.
    let expired = sandbox.mint_token(MintRequest {
        ttl_seconds: Some(0),
        ..member()
    });
    let (_, info) = token_info(&sandbox, &client, &expired.access_token).await;
    assert_eq!(info["active"], true);
    assert!(info["exp"].as_i64().unwrap() < state::now());

    sandbox.revoke(&minted.access_token);
    let (status, info) = token_info(&sandbox, &client, &minted.access_token).await;
    assert_eq!((status, info), (StatusCode::OK, json!({"active": false})));
    let (status, info) = token_info(&sandbox, &client, "OauthNG.JWS.x.y.z").await;
    assert_eq!((status, info), (StatusCode::OK, json!({"active": false})));

    let url = format!("{}/oauth2/token-info", sandbox.base_url());
    let (status, body) = post(&client, url, json!({"nope": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "INVALID_ARGUMENT");
    assert_eq!(sandbox.stats().token_info_calls, 6);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn client_credentials_checks_the_app_credentials() {
    let (sandbox, client) = start().await;
    let body = json!({"grant_type": "client_credentials", "client_id": APP_ID,
        "client_secret": APP_SECRET, "instance_id": "inst-9"});
    let (status, answer) = grant(&sandbox, &client, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["expires_in"], 4 * 60 * 60);
    let token = answer["access_token"].as_str().unwrap();
    let (_, info) = token_info(&sandbox, &client, token).await;
    assert_eq!(info["subjectType"], "APP");
    assert_eq!(info["instanceId"], "inst-9");

    let mut wrong = body.clone();
    wrong["client_secret"] = "guess".into();
    let (status, answer) = grant(&sandbox, &client, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&answer), "UNAUTHENTICATED");
    let mut wrong = body.clone();
    wrong["client_id"] = "other-app".into();
    assert_eq!(
        grant(&sandbox, &client, wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut wrong = body.clone();
    wrong["instance_id"] = "".into();
    assert_eq!(
        grant(&sandbox, &client, wrong).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, _) = grant(&sandbox, &client, json!({"grant_type": "password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.stats().client_credentials_calls, 4);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn strip_bound_session_yields_an_equivalent_caller_token() {
    let (sandbox, client) = start().await;
    let original = sandbox.mint_token(member());
    let (status, answer) = strip(&sandbox, &client, &original.access_token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stripped = answer["access_token"].as_str().unwrap().to_owned();
    assert_ne!(stripped, original.access_token);
    let expires_in = answer["expires_in"].as_i64().unwrap();
    assert!((4 * 3600 - 5..=4 * 3600).contains(&expires_in));
    assert_eq!(
        token_info(&sandbox, &client, &stripped).await.1,
        token_info(&sandbox, &client, &original.access_token)
            .await
            .1
    );

    let app = app_token(&sandbox, &client, "inst-1").await;
    assert_eq!(
        strip(&sandbox, &client, &app).await.0,
        StatusCode::UNAUTHORIZED
    );
    let expired = sandbox.mint_token(MintRequest {
        ttl_seconds: Some(-10),
        ..member()
    });
    let (status, _) = strip(&sandbox, &client, &expired.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = json!({"grant_type": "strip_bound_session", "client_secret": "guess",
        "access_token": original.access_token});
    assert_eq!(
        grant(&sandbox, &client, body).await.0,
        StatusCode::UNAUTHORIZED
    );
    sandbox.revoke(&original.access_token);
    let (status, _) = strip(&sandbox, &client, &original.access_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.stats().strip_bound_session_calls, 5);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn token_info_faults_and_hang_ends_at_shutdown() {
    let (sandbox, client) = start().await;
    let token = sandbox.mint_token(member()).access_token;
    sandbox.set_token_info_fault(Some(Fault::Status(503)));
    let (status, body) = token_info(&sandbox, &client, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "UNAVAILABLE");
    sandbox.set_token_info_fault(None);
    assert_eq!(
        token_info(&sandbox, &client, &token).await.1["active"],
        true
    );

    sandbox.set_token_info_fault(Some(Fault::Hang));
    let url = format!("{}/oauth2/token-info", sandbox.base_url());
    let pending = tokio::spawn({
        let client = client.clone();
        async move { post(&client, url, json!({"token": token})).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    let started = Instant::now();
    sandbox.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let (status, _) = pending.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
