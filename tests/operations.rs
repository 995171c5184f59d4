//! End to end: what an operator relies on: probes, metrics, the decision
//! log, abuse limits and TLS.

mod common;

use std::{
    io::{Read, Write},
    time::Duration,
};

use common::{assert_elevated, loopback, wix_error, Harness, POLICIES};
use wix_elevator::{
    admin::Admin,
    config::{RateLimitConfig, RateLimitKey, TlsConfig},
    server::{Server, ServerOptions},
};

const OWN_PROFILE: &str = "/members/v1/members/member-1?fieldsets=FULL";

async fn scrape(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of the metric line starting with `series` (name and labels).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn probes_and_metrics_describe_the_traffic() {
    let h = Harness::start().await;
    let admin = Server::start(
        loopback().await,
        Admin::new(h.gateway.clone()),
        ServerOptions::default(),
    );
    let base = format!("http://{}", admin.local_addr());
    let member = h.token("MEMBER", "member-1");
    assert_eq!(h.get(OWN_PROFILE, &member).await.status(), 200);
    assert_eq!(h.get(OWN_PROFILE, &member).await.status(), 200);
    assert_eq!(
        h.get("/members/v1/members/member-2?fieldsets=FULL", &member)
            .await
            .status(),
        403
    );
    assert_eq!(
        h.get(OWN_PROFILE, "OauthNG.JWS.unknown").await.status(),
        401
    );

    assert_eq!(scrape(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(scrape(&format!("{base}/readyz")).await.0, 200);
    let (status, text) = scrape(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let requests = "wix_elevator_requests_total";
    assert_eq!(
        metric(
            &text,
            &format!(
                "{requests}{{rule=\"member-reads-own-profile\",decision=\"allow\",status=\"2xx\"}}"
            )
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{requests}{{rule=\"\",decision=\"deny\",status=\"4xx\"}}")
        ),
        2.0
    );
    assert_eq!(
        metric(&text, "wix_elevator_request_duration_seconds_count"),
        4.0
    );
    assert_eq!(
        metric(&text, "wix_elevator_upstream_duration_seconds_count"),
        2.0
    );
    let cache = "wix_elevator_cache_events_total";
    assert_eq!(
        metric(
            &text,
            &format!("{cache}{{cache=\"identity\",event=\"miss\"}}")
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{cache}{{cache=\"identity\",event=\"hit\"}}")
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{cache}{{cache=\"app_token\",event=\"miss\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{cache}{{cache=\"app_token\",event=\"hit\"}}")
        ),
        1.0
    );
    let calls = "wix_elevator_wix_calls_total";
    assert_eq!(
        metric(
            &text,
            &format!("{calls}{{call=\"token_info\",result=\"ok\"}}")
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("{calls}{{call=\"client_credentials\",result=\"ok\"}}")
        ),
        1.0
    );
    assert_eq!(metric(&text, "wix_elevator_in_flight_requests"), 0.0);
    assert!(metric(&text, "wix_elevator_open_connections") >= 1.0);
    for name in [
        "wix_elevator_policy_reloads",
        "wix_elevator_policy_last_reload_success_timestamp_seconds",
        "wix_elevator_policy_version",
    ] {
        assert!(text.contains(&format!("# TYPE {name}")), "{name} missing");
    }

    h.gateway.begin_drain();
    assert_eq!(scrape(&format!("{base}/readyz")).await.0, 503);
    assert_eq!(scrape(&format!("{base}/healthz")).await.0, 200);
    admin.shutdown().await;
}

#[tokio::test]
async fn the_decision_log_has_one_record_per_request_with_every_field() {
    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let allowed = h.get(OWN_PROFILE, &member).await;
    let request_id = allowed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let wix_request_id = allowed.headers()["x-wix-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.get("/nowhere", &member).await.status(), 403);

    let records = h.decision_records(2).await;
    assert_eq!(records.len(), 2);
    let allow = &records[0];
    assert_eq!(allow["request_id"], request_id.as_str());
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["rule"], "member-reads-own-profile");
    assert_eq!(allow["mode"], "elevate");
    assert_eq!(allow["caller_type"], "MEMBER");
    assert_eq!(allow["instance"], common::INSTANCE);
    assert_eq!(allow["method"], "GET");
    assert_eq!(allow["path"], "/members/v1/members/member-1");
    assert_eq!(allow["status"], 200);
    assert_eq!(allow["upstream_status"], 200);
    assert_eq!(allow["wix_request_id"], wix_request_id.as_str());
    assert!(allow["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(allow["upstream_ms"].as_f64().unwrap() > 0.0);
    assert!(allow["ts"].is_string());
    let caller = allow["caller"].as_str().unwrap();
    assert_eq!(caller.len(), 16, "the caller id is a fingerprint");
    assert_ne!(caller, "member-1");

    let deny = &records[1];
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["reason"], "no_route");
    assert_eq!(deny["status"], 403);
    assert!(deny["rule"].is_null());
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_and_recovers() {
    let h = Harness::build(
        POLICIES,
        |config| {
            config.rate_limits = vec![RateLimitConfig {
                rules: vec!["member-reads-own-profile".into()],
                key: RateLimitKey::Caller,
                requests: 2,
                per: Duration::from_secs(1),
                burst: 2,
            }]
        },
        |_| {},
    )
    .await;
    let member = h.token("MEMBER", "member-1");
    let other = h.token("MEMBER", "member-2");
    assert_eq!(h.get(OWN_PROFILE, &member).await.status(), 200);
    assert_eq!(h.get(OWN_PROFILE, &member).await.status(), 200);
    let limited = h.get(OWN_PROFILE, &member).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (status, code, _) = wix_error(limited).await;
    assert_eq!((status, code.as_str()), (429, "RESOURCE_EXHAUSTED"));
    // Another caller has a budget of their own.
    let others = "/members/v1/members/member-2?fieldsets=FULL";
    assert_eq!(h.get(others, &other).await.status(), 200);
    assert_eq!(
        h.sandbox.requests().len(),
        3,
        "the limited request was not forwarded"
    );
    let metrics = h.gateway.metrics().render();
    assert!(
        metrics.contains("wix_elevator_rate_limited_total{rule=\"member-reads-own-profile\"} 1"),
        "{metrics}"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.get(OWN_PROFILE, &member).await.status(), 200, "recovered");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let h = Harness::build(POLICIES, |config| config.max_connections = 2, |_| {}).await;
    let addr = h.server.local_addr();
    let member = h.token("MEMBER", "member-1");
    let request =
        format!("GET {OWN_PROFILE} HTTP/1.1\r\nHost: gw\r\nAuthorization: {member}\r\n\r\n");
    let answered = tokio::task::spawn_blocking(move || {
        let open = |request: &str| {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            stream
        };
        let answers = |stream: &mut std::net::TcpStream| {
            let mut buf = [0u8; 64];
            matches!(stream.read(&mut buf), Ok(n) if n > 0)
        };
        let mut first = open(&request);
        let mut second = open(&request);
        let mut third = open(&request);
        let before = (
            answers(&mut first),
            answers(&mut second),
            answers(&mut third),
        );
        drop(first);
        let after = answers(&mut third);
        (before, after)
    })
    .await
    .unwrap();
    assert_eq!(answered, ((true, true, false), true));
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_refused_at_once() {
    let h = Harness::build(POLICIES, |config| config.max_in_flight = 1, |_| {}).await;
    let member = h.token("MEMBER", "member-1");
    let slow_path = format!("{OWN_PROFILE}&_sandbox_delay_ms=800");
    let slow = h.get(&slow_path, &member);
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.get(OWN_PROFILE, &member).await
    };
    let (slow, second) = tokio::join!(slow, second);
    assert_eq!(slow.status(), 200);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(wix_error(second).await.0, 503);
}

fn tls_client(addr: std::net::SocketAddr, trusted_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(trusted_pem.as_bytes()).unwrap()])
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_http2_and_certificate_reload_without_dropping_connections() {
    let dir = std::env::temp_dir().join(format!("wix-elevator-tls-{:x}", common::rand_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (first_pem, cert, key) = common::certificate(&dir, "first");
    let live_cert = dir.join("live.crt");
    let live_key = dir.join("live.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let tls = TlsConfig {
        cert: live_cert.clone(),
        key: live_key.clone(),
        reload_interval: Duration::from_millis(100),
    };
    let h = Harness::build(POLICIES, move |config| config.tls = Some(tls), |_| {}).await;
    let addr = h.server.local_addr();
    let url = format!("https://localhost:{}{OWN_PROFILE}", addr.port());
    let member = h.token("MEMBER", "member-1");

    let profile =
        |client: &reqwest::Client| client.get(&url).header("authorization", &member).send();

    let old_client = tls_client(addr, &first_pem);
    let response = profile(&old_client).await.unwrap();
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN chose h2"
    );
    assert_eq!(response.status(), 200);

    // Swap the certificate files the way a secret mount does: by rename.
    let (second_pem, cert, key) = common::certificate(&dir, "second");
    std::fs::rename(&key, &live_key).unwrap();
    std::fs::rename(&cert, &live_cert).unwrap();
    let new_client = tls_client(addr, &second_pem);
    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if profile(&new_client).await.is_ok() {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "new handshakes present the new certificate");
    // The connection made under the old certificate is still served.
    assert_eq!(profile(&old_client).await.unwrap().status(), 200);
    // And a fresh client that trusts only the old certificate is refused.
    assert!(tls_client(addr, &first_pem).get(&url).send().await.is_err());
    // What reached Wix: the three requests that got through (handshakes
    // that failed sent nothing), each with the app's token, not the
    // member's.
    let received = h.sandbox.requests();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_elevated(request, &member);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_caller_over_their_own_limit_does_not_spend_their_sites() {
    let limit = |key, requests| RateLimitConfig {
        rules: vec!["*".into()],
        key,
        requests,
        per: Duration::from_secs(60),
        burst: requests,
    };
    let h = Harness::build(
        POLICIES,
        move |config| {
            config.rate_limits = vec![
                limit(RateLimitKey::Instance, 3),
                limit(RateLimitKey::Caller, 1),
            ]
        },
        |_| {},
    )
    .await;
    let member = h.token("MEMBER", "member-1");
    let statuses: Vec<u16> = futures::future::join_all((0..4).map(|_| h.get(OWN_PROFILE, &member)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    let other = h.token("MEMBER", "member-2");
    let response = h
        .get("/members/v1/members/member-2?fieldsets=FULL", &other)
        .await;
    assert_eq!(
        response.status(),
        200,
        "the site's budget was not spent by refusals"
    );
}
