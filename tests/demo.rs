//! The demo's printed curl lines, run as printed against the repository's own
//! `proxy.yaml` and `policies/`, do what their comments say.

use std::{net::SocketAddr, path::Path, process::Command};

use wix_elevator::{
    demo::{calls, Demo},
    sandbox::Credential,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_curl_lines_do_what_they_say() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("proxy.yaml");
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let demo = Demo::start(&config, Some(listen))
        .await
        .expect("demo starts");
    let text = demo.instructions();
    let exports: String = text
        .lines()
        .filter(|line| line.starts_with("export "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(exports.lines().count(), 2, "{text}");

    for call in calls() {
        let line = call.curl(&demo.gateway_url());
        assert!(text.contains(&line), "the demo prints {line}");
        let script = format!("{exports}\n{line} -o /dev/null -w '%{{http_code}}' --max-time 10");
        let output = tokio::task::spawn_blocking(move || {
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .expect("sh runs")
        })
        .await
        .unwrap();
        let status = String::from_utf8_lossy(&output.stdout);
        assert_eq!(status, call.expect.to_string(), "{}: {line}", call.what);
    }

    // What reached the sandbox: the two elevated calls as the app of the
    // demo instance, the pass-through call as the member; the denied ones not at all.
    let received = demo.sandbox.requests();
    let credentials: Vec<&Credential> = received.iter().map(|r| &r.credential).collect();
    assert_eq!(received.len(), 3, "{credentials:?}");
    assert!(
        matches!(credentials[0], Credential::App { instance_id } if instance_id == "demo-instance")
    );
    assert!(matches!(credentials[1], Credential::App { .. }));
    assert!(
        matches!(credentials[2], Credential::Caller { subject_type, .. } if subject_type == "MEMBER")
    );
}
