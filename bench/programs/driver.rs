//! `bench_driver`: the load benchmark behind `bench/run.sh`, and the writer
//! of `bench/RESULTS.md`.
//!
//! It starts, on loopback only:
//! - the sandbox (token-info and token only), in this process;
//! - the fixed-response upstream (`bench_upstream`) on the load CPU;
//! - nginx (one worker) and the gateway (`TOKIO_WORKER_THREADS=1`), each
//!   pinned to the proxy CPU;
//!
//! and measures, with the configurations interleaved in every round
//! (A B C D E, A B C D E, ...) so that machine drift hits all alike:
//! - A: direct, load tool → upstream (the ceiling on this machine);
//! - B: nginx, plain `proxy_pass` to a keep-alive upstream pool;
//! - C: the gateway, an elevated GET rule with two conditions, caches warm;
//! - D: the gateway, a pass-through POST rule whose conditions read a 1 KiB
//!   JSON body;
//! - E: nginx proxying D's POST (so that D has a like-for-like baseline too).
//!
//! Closed loop (wrk, keep-alive, several connection counts) gives requests
//! per second; open loop (oha `-q` at half of B's peak, with
//! `--latency-correction` against coordinated omission) gives p50/p99/p99.9.
//! Every cell must answer 2xx only, and the sandbox must count no token-info
//! or token call while the gateway is measured; otherwise the run is invalid.
//! The criterion and scale results (run before, by bench/run.sh) are read
//! from disk and put in the same report.

mod report;
mod support;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use report::Report;
use serde_json::Value;
use support::process::{
    children, cpu_busy, cpu_jiffies, free_port, process_jiffies, wait_gateway_ready, Proc,
};
use wix_elevator::{
    sandbox::{MintRequest, Sandbox, SandboxConfig, SandboxStats},
    secret::Secret,
};

const APP_ID: &str = "bench-app";
const APP_SECRET: &str = "bench-app-secret";
const MEMBER: &str = "0f2c1d7e-8a4b-4c3d-9e5f-1a2b3c4d5e6f";
const GET_PATH: &str = "/members/v1/members/0f2c1d7e-8a4b-4c3d-9e5f-1a2b3c4d5e6f?fieldsets=FULL";
const POST_PATH: &str = "/wix-data/v2/items";
/// The CPU the proxy under test gets to itself; load tool and upstream share
/// the other.
const PROXY_CPU: &str = "0";
const LOAD_CPU: &str = "1";

struct Args {
    repo: PathBuf,
    out: PathBuf,
    gateway_bin: PathBuf,
    upstream_bin: PathBuf,
    oha: PathBuf,
    wrk: PathBuf,
    nginx: PathBuf,
    command: String,
    criterion_dir: Option<PathBuf>,
    scale_json: Option<PathBuf>,
    quick: bool,
    rounds: usize,
    seconds: u64,
    connections: Vec<u32>,
    latency_seconds: u64,
    latency_connections: u32,
    /// Set everything up, print how to reach it, and wait this long instead
    /// of measuring: for profiling by hand (`perf`, `valgrind`, A/B runs).
    hold: Option<u64>,
}

fn parse_args() -> Args {
    let mut args = Args {
        repo: PathBuf::from("."),
        out: PathBuf::from("bench/RESULTS.md"),
        gateway_bin: PathBuf::from("target/release/wix-elevator"),
        upstream_bin: PathBuf::from("target/release/examples/bench_upstream"),
        oha: PathBuf::from("oha"),
        wrk: PathBuf::from("wrk"),
        nginx: PathBuf::from("nginx"),
        command: "bench/run.sh".into(),
        criterion_dir: None,
        scale_json: None,
        quick: false,
        rounds: 5,
        seconds: 5,
        connections: vec![16, 64, 256],
        latency_seconds: 10,
        latency_connections: 64,
        hold: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--repo" => args.repo = value().into(),
            "--out" => args.out = value().into(),
            "--gateway-bin" => args.gateway_bin = value().into(),
            "--upstream-bin" => args.upstream_bin = value().into(),
            "--oha" => args.oha = value().into(),
            "--wrk" => args.wrk = value().into(),
            "--nginx" => args.nginx = value().into(),
            "--command" => args.command = value(),
            "--criterion-dir" => args.criterion_dir = Some(value().into()),
            "--scale-json" => args.scale_json = Some(value().into()),
            "--rounds" => args.rounds = value().parse().expect("--rounds N"),
            "--seconds" => args.seconds = value().parse().expect("--seconds N"),
            "--latency-seconds" => args.latency_seconds = value().parse().expect("N"),
            "--connections" => {
                args.connections = value()
                    .split(',')
                    .map(|c| c.trim().parse().expect("--connections 16,64,256"))
                    .collect()
            }
            "--hold" => args.hold = Some(value().parse().expect("--hold SECONDS")),
            "--quick" => {
                args.quick = true;
                args.rounds = 1;
                args.seconds = 2;
                args.connections = vec![64];
                args.latency_seconds = 3;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Waits `duration`, or until SIGINT or SIGTERM: a hold ends through the
/// normal return either way, so the processes it started are stopped
/// rather than left on the proxy CPU.
async fn hold(duration: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// One configuration under load.
struct Setup {
    key: &'static str,
    what: &'static str,
    url: String,
    post: bool,
    /// The processes whose CPU time is the proxy's (none for A).
    proxy: Option<u32>,
    /// Whether the gateway serves it (sandbox calls are then checked).
    gateway: bool,
}

/// One closed-loop measurement.
#[derive(Clone, Debug)]
struct Cell {
    rps: f64,
    requests: u64,
    errors: u64,
    cpu_proxy_core: f64,
    cpu_load_core: f64,
    proxy_cpu: f64,
}

/// One open-loop measurement (milliseconds).
#[derive(Clone, Debug)]
struct LatencyCell {
    p50: f64,
    p99: f64,
    p999: f64,
    rps: f64,
    requests: u64,
    errors: u64,
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("wix-elevator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // The sandbox: token-info and token only.
    let sandbox = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback binds");
        Sandbox::start(
            listener,
            SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
        )
    });
    let token = sandbox
        .mint_token(MintRequest::caller(
            "MEMBER",
            MEMBER,
            "instance-1",
            "site-1",
        ))
        .access_token;

    // The upstream, on the load CPU.
    let max_seconds = "3600";
    let mut upstream = Proc::start(
        "upstream",
        Some(LOAD_CPU),
        &args.upstream_bin,
        &["--listen", "127.0.0.1:0", "--max-seconds", max_seconds],
        &[],
        &dir.join("upstream.log"),
        true,
    );
    let upstream_addr = upstream.read_stdout_line("listening on ");

    // The gateway, on the proxy CPU, one tokio worker.
    let policies = args
        .repo
        .join("bench/policies")
        .canonicalize()
        .expect("bench/policies");
    let config = std::fs::read_to_string(args.repo.join("bench/gateway.yaml"))
        .expect("bench/gateway.yaml")
        .replace("{{UPSTREAM}}", &upstream_addr)
        .replace("{{SANDBOX}}", &sandbox.local_addr().to_string())
        .replace("{{APP_ID}}", APP_ID)
        .replace("{{POLICIES}}", &policies.display().to_string());
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config).expect("gateway config");
    let gateway_log = dir.join("gateway.log");
    let config_arg = config_path.display().to_string();
    let mut gateway = Proc::start(
        "gateway",
        Some(PROXY_CPU),
        &args.gateway_bin,
        &["serve", "--config", &config_arg],
        &[
            ("WIX_APP_SECRET", APP_SECRET),
            ("TOKIO_WORKER_THREADS", "1"),
            ("RUST_LOG", "info"),
        ],
        &gateway_log,
        false,
    );
    let gateway_addr = wait_gateway_ready(&mut gateway, &gateway_log);

    // nginx, on the proxy CPU, one worker.
    let nginx_port = free_port();
    let nginx_conf = std::fs::read_to_string(args.repo.join("bench/nginx.conf"))
        .expect("bench/nginx.conf")
        .replace("{{DIR}}", &dir.display().to_string())
        .replace("{{UPSTREAM}}", &upstream_addr)
        .replace("{{LISTEN}}", &format!("127.0.0.1:{nginx_port}"));
    let nginx_conf_path = dir.join("nginx.conf");
    std::fs::write(&nginx_conf_path, nginx_conf).expect("nginx config");
    let nginx_conf_arg = nginx_conf_path.display().to_string();
    let prefix_arg = format!("{}/", dir.display());
    let mut nginx = Proc::start(
        "nginx",
        Some(PROXY_CPU),
        &args.nginx,
        &["-p", &prefix_arg, "-c", &nginx_conf_arg],
        &[],
        &dir.join("nginx-stdout.log"),
        false,
    );
    let nginx_addr = format!("127.0.0.1:{nginx_port}");
    wait_listening(&nginx_addr, &mut nginx);

    let setups = [
        Setup {
            key: "A",
            what: "direct: load tool → upstream (ceiling)",
            url: format!("http://{upstream_addr}{GET_PATH}"),
            post: false,
            proxy: None,
            gateway: false,
        },
        Setup {
            key: "B",
            what: "nginx, 1 worker, keep-alive pool, plain proxy_pass (GET)",
            url: format!("http://{nginx_addr}{GET_PATH}"),
            post: false,
            proxy: Some(nginx.pid()),
            gateway: false,
        },
        Setup {
            key: "C",
            what: "gateway, elevated GET rule, 2 conditions, caches warm",
            url: format!("http://{gateway_addr}{GET_PATH}"),
            post: false,
            proxy: Some(gateway.pid()),
            gateway: true,
        },
        Setup {
            key: "D",
            what: "gateway, pass-through POST rule, 3 conditions on a 1 KiB JSON body",
            url: format!("http://{gateway_addr}{POST_PATH}"),
            post: true,
            proxy: Some(gateway.pid()),
            gateway: true,
        },
        Setup {
            key: "E",
            what: "nginx, plain proxy_pass of D's POST (D's like-for-like baseline)",
            url: format!("http://{nginx_addr}{POST_PATH}"),
            post: true,
            proxy: Some(nginx.pid()),
            gateway: false,
        },
    ];

    let body = post_body();
    assert_eq!(body.len(), 1024, "D's body is exactly 1 KiB");
    let body_path = dir.join("body.json");
    std::fs::write(&body_path, &body).expect("body file");
    let get_script = dir.join("get.lua");
    let post_script = dir.join("post.lua");
    std::fs::write(&get_script, wrk_script(&token, None)).expect("lua");
    std::fs::write(&post_script, wrk_script(&token, Some(&body))).expect("lua");

    // Warm the caches (one request each) and check every setup answers 200
    // from the upstream.
    for setup in &setups {
        let (status, from_upstream) =
            runtime.block_on(check_once(&setup.url, &token, setup.post.then_some(&body)));
        assert!(
            status == 200 && from_upstream,
            "{} answered {status} (from upstream: {from_upstream}); see {}",
            setup.key,
            dir.display()
        );
    }
    let warm_stats = sandbox.stats();
    println!("warm: {warm_stats:?}");

    if let Some(seconds) = args.hold {
        for setup in &setups {
            println!("{} {} pid={:?}", setup.key, setup.url, setup.proxy);
        }
        println!(
            "scripts: {} {}",
            get_script.display(),
            post_script.display()
        );
        println!(
            "holding for {seconds} s (or until interrupted); see {}",
            dir.display()
        );
        runtime.block_on(hold(Duration::from_secs(seconds)));
        // The logs of a long hold run to GiBs: gone with the hold.
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let script = |setup: &Setup| {
        if setup.post {
            post_script.clone()
        } else {
            get_script.clone()
        }
    };
    // Warm-up load, unmeasured: pools filled, pages touched.
    for setup in &setups {
        let _ = run_wrk(
            &args,
            &setup.url,
            &script(setup),
            64,
            if args.quick { 1 } else { 2 },
            None,
        );
    }

    // Closed loop: rounds × connection counts × setups, interleaved.
    let mut cells: BTreeMap<(usize, u32), Vec<Cell>> = BTreeMap::new();
    let mut gateway_requests = 0u64;
    let mut gateway_calls = SandboxStats::default();
    for round in 0..args.rounds {
        for &connections in &args.connections {
            for (i, setup) in setups.iter().enumerate() {
                let before = sandbox.stats();
                let cell = run_wrk(
                    &args,
                    &setup.url,
                    &script(setup),
                    connections,
                    args.seconds,
                    setup.proxy,
                );
                let after = sandbox.stats();
                if setup.gateway {
                    gateway_requests += cell.requests;
                    add_calls(&mut gateway_calls, &before, &after);
                }
                println!(
                    "round {} c={connections} {}: {:.0} req/s, {} errors, proxy {:.0}% of a core, cpu{PROXY_CPU} {:.0}%, cpu{LOAD_CPU} {:.0}%",
                    round + 1,
                    setup.key,
                    cell.rps,
                    cell.errors,
                    cell.proxy_cpu,
                    cell.cpu_proxy_core,
                    cell.cpu_load_core
                );
                cells.entry((i, connections)).or_default().push(cell);
            }
        }
    }

    // Open loop at half of B's peak.
    let peak = |i: usize| {
        args.connections
            .iter()
            .map(|&c| median(cells[&(i, c)].iter().map(|cell| cell.rps).collect()))
            .fold(0.0, f64::max)
    };
    let rate = (peak(1) / 2.0).round().max(100.0) as u64;
    let mut latency: BTreeMap<usize, Vec<LatencyCell>> = BTreeMap::new();
    for round in 0..args.rounds {
        for (i, setup) in setups.iter().enumerate() {
            let before = sandbox.stats();
            let cell = run_oha(&args, setup, &token, &body_path, rate);
            let after = sandbox.stats();
            if setup.gateway {
                gateway_requests += cell.requests;
                add_calls(&mut gateway_calls, &before, &after);
            }
            println!(
                "latency round {} {} at {rate}/s: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, {} errors",
                round + 1,
                setup.key,
                cell.p50,
                cell.p99,
                cell.p999,
                cell.errors
            );
            latency.entry(i).or_default().push(cell);
        }
    }

    gateway.assert_running();
    nginx.assert_running();
    upstream.assert_running();
    let gateway_rss = support::process::rss_kib(gateway.pid());
    gateway.stop();
    nginx.stop();
    upstream.stop();
    runtime.block_on(sandbox.shutdown());

    let report = Report {
        args: &args,
        setups: &setups,
        cells: &cells,
        latency: &latency,
        rate,
        warm_stats,
        gateway_requests,
        gateway_calls,
        gateway_rss_mib: gateway_rss.0 as f64 / 1024.0,
        elapsed: started.elapsed(),
    };
    let (text, valid) = report.render();
    std::fs::write(&args.out, &text).expect("writes the results");
    update_readme(&args.repo.join("README.md"), &report.summary());
    println!("\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
    if !valid {
        eprintln!("the run is invalid (errors, or sandbox calls once warm): see the report");
        std::process::exit(1);
    }
}

/// Replaces the line between the README's `<!-- bench:summary -->`
/// markers, so that the README's one-line summary follows the last run.
fn update_readme(path: &Path, summary: &str) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let (start, end) = ("<!-- bench:summary -->\n", "<!-- /bench:summary -->");
    let (Some(from), Some(to)) = (text.find(start), text.find(end)) else {
        return;
    };
    let from = from + start.len();
    if from <= to {
        let updated = format!("{}{summary}\n{}", &text[..from], &text[to..]);
        let _ = std::fs::write(path, updated);
    }
}

fn add_calls(total: &mut SandboxStats, before: &SandboxStats, after: &SandboxStats) {
    total.token_info_calls += after.token_info_calls - before.token_info_calls;
    total.client_credentials_calls +=
        after.client_credentials_calls - before.client_credentials_calls;
    total.strip_bound_session_calls +=
        after.strip_bound_session_calls - before.strip_bound_session_calls;
    total.api_calls += after.api_calls - before.api_calls;
}

/// Waits until something accepts connections at `addr`.
fn wait_listening(addr: &str, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        proc.assert_running();
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} is not listening on {addr}", proc.name);
}

/// D's body: a Wix Data insert, padded to exactly 1,024 bytes.
fn post_body() -> String {
    let head = format!(
        r#"{{"dataCollectionId":"Comments","dataItem":{{"data":{{"memberId":"{MEMBER}","rating":4,"title":"A fair place","text":""#
    );
    let tail = r#""}}}"#;
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
        .repeat(20)
        .chars()
        .take(1024 - head.len() - tail.len())
        .collect::<String>();
    format!("{head}{filler}{tail}")
}

/// A wrk script sending the member's token (and D's body for POSTs).
fn wrk_script(token: &str, body: Option<&str>) -> String {
    let mut script = format!(
        "wrk.headers[\"Authorization\"] = \"{token}\"\nwrk.headers[\"Accept\"] = \"application/json\"\n"
    );
    if let Some(body) = body {
        let _ = write!(
            script,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{body}]==]\n"
        );
    }
    script
}

/// One request through `url`: its status and whether the upstream answered.
async fn check_once(url: &str, token: &str, body: Option<&String>) -> (u16, bool) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let request = match body {
        Some(body) => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone()),
        None => client.get(url),
    };
    match request.header("authorization", token).send().await {
        Ok(response) => (
            response.status().as_u16(),
            response.headers().contains_key(support::fixed::MARK),
        ),
        Err(error) => panic!("{url}: {error}"),
    }
}

/// The CPU time of a proxy: the process and its children (nginx's worker).
fn proxy_jiffies(pid: u32) -> u64 {
    process_jiffies(pid) + children(pid).into_iter().map(process_jiffies).sum::<u64>()
}

/// A closed-loop run of wrk (one thread, on the load CPU).
fn run_wrk(
    args: &Args,
    url: &str,
    script: &Path,
    connections: u32,
    seconds: u64,
    proxy: Option<u32>,
) -> Cell {
    let cpus_before = cpu_jiffies();
    let proxy_before = proxy.map(proxy_jiffies);
    let started = Instant::now();
    let output = Command::new("taskset")
        .args(["-c", LOAD_CPU])
        .arg(&args.wrk)
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--timeout", "5s", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let wall = started.elapsed().as_secs_f64();
    let cpus_after = cpu_jiffies();
    let busy = cpu_busy(&cpus_before, &cpus_after);
    let proxy_cpu = match (proxy, proxy_before) {
        (Some(pid), Some(before)) => {
            // Jiffies are 1/100 s on Linux (USER_HZ).
            (proxy_jiffies(pid) - before) as f64 / wall
        }
        _ => 0.0,
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "wrk failed: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let number_after = |label: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
    };
    let rps = number_after("Requests/sec:").expect("wrk printed Requests/sec");
    let requests = text
        .lines()
        .find(|line| line.contains("requests in"))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non_2xx = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    let socket_errors: u64 = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Cell {
        rps,
        requests,
        errors: non_2xx + socket_errors,
        cpu_proxy_core: busy.first().copied().unwrap_or(0.0),
        cpu_load_core: busy.get(1).copied().unwrap_or(0.0),
        proxy_cpu,
    }
}

/// An open-loop run of oha at `rate` requests per second, latencies
/// corrected for coordinated omission.
fn run_oha(args: &Args, setup: &Setup, token: &str, body: &Path, rate: u64) -> LatencyCell {
    let mut command = Command::new("taskset");
    command
        .args(["-c", LOAD_CPU])
        .arg(&args.oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--latency-correction",
        ])
        // One runtime thread on the load CPU; requests still in flight at
        // the deadline are waited for, not counted as aborted.
        .args(["--worker-threads", "1", "-w"])
        .args(["-z", &format!("{}s", args.latency_seconds)])
        .args(["-c", &args.latency_connections.to_string()])
        .args(["-q", &rate.to_string()])
        .args(["-H", &format!("authorization: {token}")])
        .args(["-H", "accept: application/json"]);
    if setup.post {
        command
            .args(["-m", "POST", "-T", "application/json", "-D"])
            .arg(body);
    }
    let output = command.arg(&setup.url).output().expect("oha runs");
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "oha failed: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("oha's JSON does not parse ({error}): {text}"));
    let ms = |key: &str| json["latencyPercentiles"][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let statuses = json["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let ok: u64 = statuses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let not_ok: u64 = statuses
        .iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let failed: u64 = json["errorDistribution"]
        .as_object()
        .map(|errors| errors.values().map(|n| n.as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    LatencyCell {
        p50: ms("p50"),
        p99: ms("p99"),
        p999: ms("p99.9"),
        rps: json["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        requests: ok + not_ok,
        errors: not_ok + failed,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
