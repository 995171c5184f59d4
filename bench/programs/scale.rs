//! `bench_scale`: the scale checks, as a program (never a timed test).
//!
//! ```sh
//! bench_scale --gateway-bin target/release/wix-elevator --repo . \
//!     [--quick] [--json-out FILE] [single-flight] [memory] [flood]
//! ```
//!
//! - `single-flight`: 1,000 concurrent first requests from 100 distinct
//!   tokens over 10 instances; the sandbox must count exactly 100 token-info
//!   calls and 10 app-token mints (gateway in process).
//! - `memory`: the gateway's RSS (a separate process) with 100,000 cached
//!   identities, then with 10,000 idle keep-alive connections on top.
//! - `flood`: the gateway's RSS while 1,000,000 distinct invalid tokens are
//!   sent (300,000 with `--quick`); it must level off, since the identity
//!   cache holds at most `cache.identities` answers.
//!
//! The sandbox (token-info and token) and the fixed-response upstream run in
//! this process on 127.0.0.1:0; every loop is bounded in count and time.
//! Needs `ulimit -n` above 10,000 for `memory` (bench/run.sh raises it).

mod support;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use support::{
    client::{self, Connection},
    process::{rss_kib, wait_gateway_ready, Proc},
};
use tokio::{net::TcpListener, sync::Barrier};
use wix_elevator::{
    config::Config,
    gateway::Gateway,
    policy::PolicySet,
    sandbox::{MintRequest, Sandbox, SandboxConfig},
    secret::Secret,
};

const APP_ID: &str = "bench-app";
const APP_SECRET: &str = "bench-app-secret";
/// No check may run longer than this, whatever happens.
const CHECK_DEADLINE: Duration = Duration::from_secs(600);

struct Args {
    gateway_bin: PathBuf,
    repo: PathBuf,
    quick: bool,
    json_out: Option<PathBuf>,
    checks: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        gateway_bin: PathBuf::from("target/release/wix-elevator"),
        repo: PathBuf::from("."),
        quick: false,
        json_out: None,
        checks: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--gateway-bin" => args.gateway_bin = it.next().expect("path").into(),
            "--repo" => args.repo = it.next().expect("path").into(),
            "--json-out" => args.json_out = Some(it.next().expect("path").into()),
            "--quick" => args.quick = true,
            "single-flight" | "memory" | "flood" => args.checks.push(arg),
            other => panic!("unknown argument {other}"),
        }
    }
    if args.checks.is_empty() {
        args.checks = vec!["single-flight".into(), "memory".into(), "flood".into()];
    }
    args
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut results = serde_json::Map::new();
    for check in &args.checks {
        let started = Instant::now();
        let result = match check.as_str() {
            "single-flight" => tokio::time::timeout(CHECK_DEADLINE, single_flight(&args)).await,
            "memory" => tokio::time::timeout(CHECK_DEADLINE, memory(&args)).await,
            "flood" => tokio::time::timeout(CHECK_DEADLINE, flood(&args)).await,
            _ => unreachable!(),
        }
        .unwrap_or_else(|_| panic!("{check} did not finish within {CHECK_DEADLINE:?}"));
        println!(
            "{check} ({:.1} s): {}",
            started.elapsed().as_secs_f64(),
            serde_json::to_string_pretty(&result).expect("json")
        );
        results.insert(check.clone(), result);
    }
    if let Some(path) = &args.json_out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&Value::Object(results)).unwrap(),
        )
        .expect("writes the JSON summary");
    }
}

/// The sandbox and the fixed-response upstream, in this process.
struct Backends {
    sandbox: Sandbox,
    upstream: SocketAddr,
}

async fn backends() -> Backends {
    let sandbox = Sandbox::start(
        loopback().await,
        SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
    );
    let listener = loopback().await;
    let upstream = listener.local_addr().expect("bound");
    tokio::spawn(support::fixed::serve(listener));
    Backends { sandbox, upstream }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback binds")
}

/// The gateway configuration for the scale checks: bench/gateway.yaml with
/// idle connections kept for 5 minutes (`timeouts.header_read` is also the
/// idle keep-alive timeout) so that they are still open when measured.
fn gateway_config(repo: &Path, backends: &Backends) -> String {
    let template = std::fs::read_to_string(repo.join("bench/gateway.yaml"))
        .expect("bench/gateway.yaml is readable");
    let policies = repo
        .join("bench/policies")
        .canonicalize()
        .expect("bench/policies exists");
    let mut text = template
        .replace("{{UPSTREAM}}", &backends.upstream.to_string())
        .replace("{{SANDBOX}}", &backends.sandbox.local_addr().to_string())
        .replace("{{APP_ID}}", APP_ID)
        .replace("{{POLICIES}}", &policies.display().to_string());
    text.push_str("\ntimeouts:\n  header_read: 5m\n");
    text
}

fn member(sandbox: &Sandbox, subject: &str, instance: &str) -> String {
    sandbox
        .mint_token(MintRequest::caller(
            "MEMBER",
            subject,
            instance,
            &format!("site-of-{instance}"),
        ))
        .access_token
}

fn profile_path(subject: &str) -> String {
    format!("/members/v1/members/{subject}?fieldsets=FULL")
}

/// 1,000 concurrent first requests, 10 per token, 100 tokens, 10 instances.
async fn single_flight(args: &Args) -> Value {
    const TOKENS: usize = 100;
    const INSTANCES: usize = 10;
    const PER_TOKEN: usize = 10;
    let backends = backends().await;
    let dir = std::env::temp_dir().join(format!("wix-elevator-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = gateway_config(&args.repo, &backends);
    let config = Config::parse(&dir.join("gateway.yaml"), &text, &|name| {
        (name == "WIX_APP_SECRET").then(|| APP_SECRET.to_owned())
    })
    .expect("valid config");
    let policies = PolicySet::load(&config.policies).expect("valid policies");
    let gateway = Gateway::new(config, policies).expect("the gateway starts");
    let server = gateway.start(loopback().await);
    let addr = server.local_addr();

    let tokens: Vec<(String, String)> = (0..TOKENS)
        .map(|i| {
            let subject = format!("member-{i}");
            let token = member(
                &backends.sandbox,
                &subject,
                &format!("instance-{}", i % INSTANCES),
            );
            (subject, token)
        })
        .collect();
    let before = backends.sandbox.stats();
    let barrier = Arc::new(Barrier::new(TOKENS * PER_TOKEN));
    let mut tasks = Vec::new();
    for _ in 0..PER_TOKEN {
        for (subject, token) in &tokens {
            let request = client::get(addr, &profile_path(subject), token);
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let mut connection = Connection::new(addr);
                connection.connect().await.expect("connects");
                // Everyone connected: all 1,000 requests leave together.
                barrier.wait().await;
                connection.send(&request).await.expect("answered")
            }));
        }
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.expect("task") == 200 {
            ok += 1;
        }
    }
    let after = backends.sandbox.stats();
    let token_info = after.token_info_calls - before.token_info_calls;
    let mints = after.client_credentials_calls - before.client_credentials_calls;
    server.shutdown().await;
    backends.sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let passed =
        ok == TOKENS * PER_TOKEN && token_info == TOKENS as u64 && mints == INSTANCES as u64;
    json!({
        "requests": TOKENS * PER_TOKEN,
        "ok_200": ok,
        "tokens": TOKENS,
        "instances": INSTANCES,
        "token_info_calls": token_info,
        "token_mints": mints,
        "passed": passed,
    })
}

/// A gateway process with `backends` behind it.
fn start_gateway(args: &Args, backends: &Backends, name: &str) -> (Proc, SocketAddr, PathBuf) {
    let dir = std::env::temp_dir().join(format!("wix-elevator-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("gateway.yaml");
    std::fs::write(&config, gateway_config(&args.repo, backends)).expect("config");
    let log = dir.join("gateway.log");
    let config_arg = config.display().to_string();
    let mut proc = Proc::start(
        name,
        None,
        &args.gateway_bin,
        &["serve", "--config", &config_arg],
        &[
            ("WIX_APP_SECRET", APP_SECRET),
            // Decision records would be a million lines; errors still show.
            ("RUST_LOG", "warn,wix_elevator::serve=info"),
        ],
        &log,
        false,
    );
    let addr = wait_gateway_ready(&mut proc, &log);
    (proc, addr, dir)
}

/// Sends `count` requests over `connections` keep-alive connections, the
/// i-th built by `request(i)`; returns how many answered each status.
async fn drive(
    addr: SocketAddr,
    count: usize,
    connections: usize,
    request: Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
    expect: u16,
    progress: Option<Arc<AtomicUsize>>,
) -> (u64, u64) {
    let next = Arc::new(AtomicUsize::new(0));
    let good = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (next, good, bad, request, progress) = (
            next.clone(),
            good.clone(),
            bad.clone(),
            request.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::new(addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                match connection.send(&request(i)).await {
                    Ok(status) if status == expect => good.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
                if let Some(progress) = &progress {
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    (good.load(Ordering::Relaxed), bad.load(Ordering::Relaxed))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// RSS with 100,000 cached identities, then 10,000 idle connections too.
async fn memory(args: &Args) -> Value {
    const IDENTITIES: usize = 100_000;
    const IDLE: usize = 10_000;
    const INSTANCES: usize = 100;
    let backends = backends().await;
    let (mut gateway, addr, dir) = start_gateway(args, &backends, "scale-memory");
    let pid = gateway.pid();
    let started_kib = rss_kib(pid).0;

    // 100,000 members, each with their own token, over 100 instances.
    let minted = Instant::now();
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..IDENTITIES)
            .map(|i| {
                member(
                    &backends.sandbox,
                    &format!("member-{i}"),
                    &format!("instance-{}", i % INSTANCES),
                )
            })
            .collect(),
    );
    let mint_seconds = minted.elapsed().as_secs_f64();
    let before = backends.sandbox.stats();
    let filled = Instant::now();
    let request = {
        let tokens = tokens.clone();
        Arc::new(move |i: usize| {
            client::get(addr, &profile_path(&format!("member-{i}")), &tokens[i])
        })
    };
    let (ok, failed) = drive(addr, IDENTITIES, 64, request, 200, None).await;
    let fill_seconds = filled.elapsed().as_secs_f64();
    let after = backends.sandbox.stats();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let identities_kib = rss_kib(pid).0;

    // 10,000 keep-alive connections, each after one (cached) request, left idle.
    let mut idle = Vec::with_capacity(IDLE);
    let mut idle_failed = 0;
    for i in 0..IDLE {
        let mut connection = Connection::new(addr);
        let token = &tokens[i % IDENTITIES];
        let request = client::get(addr, &profile_path(&format!("member-{i}")), token);
        match connection.send(&request).await {
            Ok(200) => idle.push(connection),
            _ => idle_failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_kib, peak_kib) = rss_kib(pid);
    // The connections were still open: one more request on a sample of
    // them goes through without reconnecting.
    gateway.assert_running();
    let mut still_open = 0;
    let sampled = idle.len().div_ceil(100);
    for connection in idle.iter_mut().step_by(100) {
        let request = client::get(addr, &profile_path("member-0"), &tokens[0]);
        if matches!(connection.send(&request).await, Ok(200)) && connection.reconnects == 0 {
            still_open += 1;
        }
    }
    let after_idle = backends.sandbox.stats();
    drop(idle);
    gateway.stop();
    backends.sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let target_mib = 64.0;
    json!({
        "identities": IDENTITIES,
        "instances": INSTANCES,
        "identity_requests_ok": ok,
        "identity_requests_failed": failed,
        "token_info_calls": after.token_info_calls - before.token_info_calls,
        "app_token_mints": after.client_credentials_calls - before.client_credentials_calls,
        "idle_connections": IDLE - idle_failed,
        "idle_failed": idle_failed,
        "idle_sampled_still_open": format!("{still_open}/{sampled}"),
        "token_info_calls_for_idle": after_idle.token_info_calls - after.token_info_calls,
        "mint_seconds": mint_seconds,
        "fill_seconds": fill_seconds,
        "rss_mib_started": mib(started_kib),
        "rss_mib_identities": mib(identities_kib),
        "rss_mib_identities_and_idle": mib(idle_kib),
        "rss_mib_peak": mib(peak_kib),
        "target_mib": target_mib,
        "passed": failed == 0
            && idle_failed == 0
            && still_open == sampled
            && mib(idle_kib) <= target_mib,
    })
}

/// RSS under a flood of distinct invalid tokens.
async fn flood(args: &Args) -> Value {
    // Quick: enough to pass the cache's capacity (100,000) and level off.
    let count: usize = if args.quick { 300_000 } else { 1_000_000 };
    let checkpoints = 10;
    let backends = backends().await;
    let (mut gateway, addr, dir) = start_gateway(args, &backends, "scale-flood");
    let pid = gateway.pid();
    let started_kib = rss_kib(pid).0;
    let before = backends.sandbox.stats();
    let progress = Arc::new(AtomicUsize::new(0));
    let request = Arc::new(move |i: usize| {
        // Distinct, well-formed, never issued: token-info says inactive.
        client::get(
            addr,
            &profile_path("member-1"),
            &format!(
                "OauthNG.JWS.bench-invalid.{i:08}.{:016x}",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
        )
    });
    let started = Instant::now();
    let driver = tokio::spawn(drive(addr, count, 64, request, 401, Some(progress.clone())));
    let mut samples = Vec::new();
    let mut next_checkpoint = count / checkpoints;
    while !driver.is_finished() {
        let done = progress.load(Ordering::Relaxed);
        if done >= next_checkpoint {
            samples.push(json!({"requests": done, "rss_mib": mib(rss_kib(pid).0)}));
            next_checkpoint += count / checkpoints;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (unauthorized, other) = driver.await.expect("flood");
    let seconds = started.elapsed().as_secs_f64();
    let (end_kib, peak_kib) = rss_kib(pid);
    samples.push(json!({"requests": count, "rss_mib": mib(end_kib)}));
    let after = backends.sandbox.stats();
    gateway.assert_running();
    gateway.stop();
    backends.sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    // Bounded: the second half of the flood adds (almost) nothing.
    let at_half = samples
        .iter()
        .find(|s| s["requests"].as_u64().unwrap_or(0) >= count as u64 / 2)
        .and_then(|s| s["rss_mib"].as_f64())
        .unwrap_or(0.0);
    let end = mib(end_kib);
    json!({
        "invalid_tokens": count,
        "answered_401": unauthorized,
        "answered_other": other,
        "token_info_calls": after.token_info_calls - before.token_info_calls,
        "seconds": seconds,
        "rss_mib_started": mib(started_kib),
        "rss_mib_at_half": at_half,
        "rss_mib_end": end,
        "rss_mib_peak": mib(peak_kib),
        "samples": samples,
        "passed": other == 0 && end <= at_half * 1.1 + 1.0,
    })
}
