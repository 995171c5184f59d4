//! End-to-end checks of the sandbox over real HTTP on loopback; shared
//! helpers here, the checks in the submodules.

mod api;
mod oauth;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::*;

pub(super) const APP_ID: &str = "app-123";
pub(super) const APP_SECRET: &str = "shh-app-secret";

pub(super) async fn start() -> (Sandbox, Client) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = Sandbox::start(
        listener,
        SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
    );
    // A proxy from the environment must never see loopback test traffic.
    let client = Client::builder().no_proxy().build().unwrap();
    (sandbox, client)
}

pub(super) fn member() -> MintRequest {
    MintRequest::caller("MEMBER", "member-1", "inst-1", "site-1")
}

pub(super) async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(super) async fn token_info(
    sandbox: &Sandbox,
    client: &Client,
    token: &str,
) -> (StatusCode, Value) {
    let url = format!("{}/oauth2/token-info", sandbox.base_url());
    post(client, url, json!({"token": token})).await
}

pub(super) async fn grant(sandbox: &Sandbox, client: &Client, body: Value) -> (StatusCode, Value) {
    post(client, format!("{}/oauth2/token", sandbox.base_url()), body).await
}

pub(super) async fn app_token(sandbox: &Sandbox, client: &Client, instance: &str) -> String {
    let body = json!({"grant_type": "client_credentials", "client_id": APP_ID,
        "client_secret": APP_SECRET, "instance_id": instance});
    let (status, body) = grant(sandbox, client, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub(super) async fn strip(sandbox: &Sandbox, client: &Client, token: &str) -> (StatusCode, Value) {
    let body = json!({"grant_type": "strip_bound_session", "client_secret": APP_SECRET,
        "access_token": token});
    grant(sandbox, client, body).await
}

pub(super) async fn api(client: &Client, url: String, auth: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.unwrap()
}

pub(super) fn code(body: &Value) -> &str {
    body["details"]["applicationError"]["code"]
        .as_str()
        .unwrap()
}
