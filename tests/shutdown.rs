//! The real binary drains on SIGTERM: readiness fails at once, every accepted
//! request completes, then it exits 0.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{loopback, wait_until, GatewayProcess, APP_ID, APP_SECRET, OWN_PROFILE_POLICY};
use wix_elevator::sandbox::{Sandbox, SandboxConfig};
use wix_elevator::secret::Secret;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_every_accepted_request_then_exits_zero() {
    let sandbox = Sandbox::start(
        loopback().await,
        SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
    );
    let config = format!(
        "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nwix:\n  base_url: {}\n  app_id: {APP_ID}\n  app_secret: ${{TEST_SECRET}}\npolicies: policies/\ndecision_log:\n  destination: off\ntimeouts:\n  drain: 10s\n",
        sandbox.base_url()
    );
    let mut gateway =
        GatewayProcess::start(&config, OWN_PROFILE_POLICY, &[("TEST_SECRET", APP_SECRET)]);
    let proxy = gateway.proxy.clone();
    let admin = gateway.admin.clone().expect("the admin endpoints listen");

    let member = common::instance_token(&sandbox, "MEMBER", "member-1");
    let slow = format!("http://{proxy}/members/v1/members/member-1?_sandbox_delay_ms=3000");
    let requests: Vec<_> = (0..5)
        .map(|_| {
            // A client each, so every request has its own connection.
            let request = reqwest::Client::new()
                .get(&slow)
                .header("authorization", &member)
                .send();
            tokio::spawn(request)
        })
        .collect();
    // All five are accepted and forwarded, and held by the sandbox's delay
    // while the rest of the test runs.
    wait_until("all five forwarded", || sandbox.requests().len() == 5).await;

    let status = Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let readiness = reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap();
        if readiness.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "still ready while draining");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        reqwest::Client::new()
            .get(format!("http://{proxy}/members/v1/members/member-1"))
            .header("authorization", &member)
            .send()
            .await
            .is_err(),
        "no new connections while draining"
    );

    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("an accepted request completes");
        assert_eq!(response.status(), 200);
    }
    let exit = tokio::task::spawn_blocking(move || {
        let exit = gateway.child.wait().unwrap();
        (gateway, exit)
    })
    .await
    .unwrap()
    .1;
    assert!(exit.success(), "{exit:?}");
}
