//! The real binary drains on SIGTERM: readiness fails at once, every accepted
//! request completes, then it exits 0.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use common::{loopback, APP_ID, APP_SECRET};
use wix_elevator::sandbox::{MintRequest, Sandbox, SandboxConfig};
use wix_elevator::secret::Secret;

const POLICY: &str = r#"
rules:
  - id: member-reads-own-profile
    match: { methods: [GET], path: "/members/v1/members/{memberId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.memberId: { equals: caller.subjectId }
    allow_query: [_sandbox_delay_ms]
"#;

/// The value after `key=` in a log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[start..]
        .split(|c: char| c.is_whitespace() || c == ')')
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_every_accepted_request_then_exits_zero() {
    let sandbox = Sandbox::start(
        loopback().await,
        SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
    );
    let dir = std::env::temp_dir().join(format!("wix-elevator-drain-{:x}", common::rand_id()));
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/members.yaml"), POLICY).unwrap();
    std::fs::write(
        dir.join("proxy.yaml"),
        format!(
            "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nwix:\n  base_url: {}\n  app_id: {APP_ID}\n  app_secret: ${{TEST_SECRET}}\npolicies: policies/\ndecision_log:\n  destination: off\ntimeouts:\n  drain: 10s\n",
            sandbox.base_url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(["serve", "--config"])
        .arg(dir.join("proxy.yaml"))
        .env("TEST_SECRET", APP_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("gateway ready") {
                let _ = ready_tx.send(line);
            }
        }
    });
    let ready = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway reports ready");
    let proxy = field(&ready, "listen=").to_owned();
    let admin = field(&ready, "admin=Some(").to_owned();

    let member = sandbox
        .mint_token(MintRequest {
            subject_type: "MEMBER".into(),
            subject_id: "member-1".into(),
            instance_id: Some("instance-1".into()),
            ..MintRequest::default()
        })
        .access_token;
    let slow = format!("http://{proxy}/members/v1/members/member-1?_sandbox_delay_ms=1500");
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
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sandbox.requests().len(),
        5,
        "all five were accepted and forwarded"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let readiness = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(readiness.status(), 503, "not ready while draining");
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
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
