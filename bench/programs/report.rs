//! Renders `bench/RESULTS.md` from one run of the driver, the criterion
//! estimates and the scale checks' JSON.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, process::Command, time::Duration};

use serde_json::Value;
use wix_elevator::sandbox::SandboxStats;

use super::{median, Args, Cell, LatencyCell, Setup, LOAD_CPU, PROXY_CPU};

pub(super) struct Report<'a> {
    pub args: &'a Args,
    pub setups: &'a [Setup],
    pub cells: &'a BTreeMap<(usize, u32), Vec<Cell>>,
    pub latency: &'a BTreeMap<usize, Vec<LatencyCell>>,
    pub rate: u64,
    pub warm_stats: SandboxStats,
    pub gateway_requests: u64,
    pub gateway_calls: SandboxStats,
    pub gateway_rss_mib: f64,
    pub elapsed: Duration,
}

/// One target and whether the run met it.
struct Target {
    what: String,
    measured: String,
    met: Option<bool>,
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "— not measured",
    }
}

fn run(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn machine(args: &Args) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    // Not available_parallelism: the driver itself is pinned to one CPU.
    let cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("unknown".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|name| name.trim_matches('"').to_owned())
        .unwrap_or_default();
    let repo = args.repo.display().to_string();
    let commit = run("git", &["-C", &repo, "rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["-C", &repo, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|out| !out.stdout.is_empty())
        .unwrap_or(false);
    let oha = args.oha.display().to_string();
    let wrk = args.wrk.display().to_string();
    let nginx = args.nginx.display().to_string();
    vec![
        ("CPU".into(), format!("{model}, {cpus} cores")),
        ("memory".into(), memory),
        ("OS".into(), format!("{os}, Linux {kernel}")),
        (
            "commit".into(),
            format!(
                "{commit}{}",
                if dirty { " (with local changes)" } else { "" }
            ),
        ),
        ("rustc".into(), run("rustc", &["-V"])),
        ("nginx".into(), run(&nginx, &["-v"])),
        ("wrk".into(), run(&wrk, &["-v"])),
        ("oha".into(), run(&oha, &["--version"])),
        (
            "load (1/5/15 min) at the end".into(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ]
}

/// Criterion's median estimate, in nanoseconds.
fn criterion_median(dir: &Path, function: &str, size: usize) -> Option<f64> {
    let path = dir
        .join("request_path")
        .join(function)
        .join(size.to_string())
        .join("new/estimates.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn ns(value: Option<f64>) -> String {
    value.map_or("—".into(), |ns| format!("{ns:.0} ns"))
}

/// The lowest and the highest of `values`.
fn spread(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    (low, high)
}

/// A proxy's CPU time per request in µs, from its CPU use in % of one core
/// at `rps` requests per second.
fn micros_per_request(cpu_percent: f64, rps: f64) -> f64 {
    cpu_percent / 100.0 / rps * 1e6
}

fn k(rps: f64) -> String {
    format!("{:.1}k", rps / 1000.0)
}

impl Report<'_> {
    fn peak(&self, setup: usize) -> (f64, u32) {
        self.args
            .connections
            .iter()
            .map(|&c| (self.median_rps(setup, c), c))
            .fold(
                (0.0, 0),
                |best, next| if next.0 > best.0 { next } else { best },
            )
    }

    fn median_rps(&self, setup: usize, connections: u32) -> f64 {
        median(
            self.cells[&(setup, connections)]
                .iter()
                .map(|cell| cell.rps)
                .collect(),
        )
    }

    fn latency_median(&self, setup: usize, pick: fn(&LatencyCell) -> f64) -> f64 {
        median(self.latency[&setup].iter().map(pick).collect())
    }

    /// C against B within each round. The configurations of one round ran
    /// close together in time, so a round's ratio is what the machine's
    /// drift touches least, and the spread of the rounds is the run's own noise:
    /// how far the medians above can be trusted.
    fn rounds(&self, out: &mut String) {
        let (_, b_at) = self.peak(1);
        let (_, c_at) = self.peak(2);
        let b_cells = &self.cells[&(1, b_at)];
        let c_cells = &self.cells[&(2, c_at)];
        let per_request = |cell: &Cell| micros_per_request(cell.proxy_cpu, cell.rps);
        let _ = writeln!(
            out,
            "\n## Round by round: C against B\n\n\
             Each round ran every configuration close together in time, so its ratio is the \
             least touched by the machine's drift; the spread across rounds is this run's own noise. \
             Throughput at each one's peak connection count (C c={c_at}, B c={b_at}).\n\n\
             | round | throughput C/B | µs/req C vs B | p99 C/B |\n| ---: | ---: | ---: | ---: |"
        );
        let mut throughput = Vec::new();
        let mut p99 = Vec::new();
        let latency = self.latency[&1].iter().zip(&self.latency[&2]);
        for (round, ((b, c), (b_lat, c_lat))) in
            b_cells.iter().zip(c_cells).zip(latency).enumerate()
        {
            throughput.push(c.rps / b.rps);
            p99.push(c_lat.p99 / b_lat.p99);
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.1} vs {:.1} | {:.2} |",
                round + 1,
                c.rps / b.rps,
                per_request(c),
                per_request(b),
                c_lat.p99 / b_lat.p99
            );
        }
        let range = |values: &[f64]| {
            let (low, high) = spread(values);
            format!("{:.2} (range {low:.2}–{high:.2})", median(values.to_vec()))
        };
        let _ = writeln!(
            out,
            "\nMedian of the rounds: throughput C/B {}, p99 C/B {}.",
            range(&throughput),
            range(&p99)
        );
    }

    /// The one-line summary the README shows between its
    /// `<!-- bench:summary -->` markers.
    pub fn summary(&self) -> String {
        let (a, _) = self.peak(0);
        let (b, _) = self.peak(1);
        let (c, _) = self.peak(2);
        let (d, _) = self.peak(3);
        let b_p99 = self.latency_median(1, |cell| cell.p99);
        let c_p99 = self.latency_median(2, |cell| cell.p99);
        format!(
            "Last run{}: throughput **C/B = {:.2}**, **D/B = {:.2}**, **C/A = {:.2}** \
             (gateway vs nginx vs direct); C's p99 at half of nginx's peak = {:.2} × nginx's.",
            if self.args.quick {
                " (quick smoke run)"
            } else {
                ""
            },
            c / b,
            d / b,
            c / a,
            c_p99 / b_p99
        )
    }

    /// The report, and whether the run is valid (no errors, no sandbox calls
    /// once warm).
    pub fn render(&self) -> (String, bool) {
        let args = self.args;
        let mut out = String::new();
        let errors: u64 = self
            .cells
            .values()
            .flatten()
            .map(|cell| cell.errors)
            .sum::<u64>()
            + self
                .latency
                .values()
                .flatten()
                .map(|cell| cell.errors)
                .sum::<u64>();
        let calls = self.gateway_calls.token_info_calls
            + self.gateway_calls.client_credentials_calls
            + self.gateway_calls.strip_bound_session_calls;
        let valid = errors == 0 && calls == 0;

        let _ = writeln!(out, "# Benchmark results\n");
        let _ = writeln!(
            out,
            "Written by `{}`{}; how it measures: [bench/README.md](README.md). \
             Every number below comes from that one run.\n",
            args.command,
            if args.quick {
                " — a **quick smoke run**: one short round, not a measurement"
            } else {
                ""
            }
        );
        // Other work on the proxy CPU while a proxy was measured: on a
        // shared machine, the sign that these numbers are not final.
        let others: Vec<f64> = self
            .cells
            .iter()
            .filter(|((setup, _), _)| self.setups[*setup].proxy.is_some())
            .flat_map(|(_, cells)| cells.iter())
            .map(|cell| (cell.cpu_proxy_core - cell.proxy_cpu).max(0.0))
            .collect();
        let noise = median(others);
        if noise > 5.0 {
            let _ = writeln!(
                out,
                "> **Preliminary, noisy run**: other processes used a median {noise:.0}% of \
                 CPU {PROXY_CPU} (the proxy's) while the proxies were measured, so throughput \
                 and latency here are lower and noisier than on an idle machine; the \
                 per-request CPU cost (\"µs/req\") and the micro-benchmarks are the least \
                 affected.\n"
            );
        }
        if !valid {
            let _ = writeln!(
                out,
                "> **This run is invalid**: {errors} non-2xx answers or socket errors, \
                 {calls} token-info/token calls while the gateway was measured.\n"
            );
        }

        // Machine.
        let _ = writeln!(out, "## Machine\n\n| | |\n| --- | --- |");
        for (key, value) in machine(args) {
            let _ = writeln!(out, "| {key} | {value} |");
        }
        let _ = writeln!(
            out,
            "| run | {} rounds, {} s per closed-loop cell, connections {:?}, {} s per open-loop cell at {} connections; {:.0} s in all |",
            args.rounds,
            args.seconds,
            args.connections,
            args.latency_seconds,
            args.latency_connections,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "| pinning | proxy under test alone on CPU {PROXY_CPU} (nginx: 1 worker; gateway: `TOKIO_WORKER_THREADS=1`); load tool and upstream on CPU {LOAD_CPU} |\n"
        );

        // Targets first: the reader's question.
        let (b_peak, b_at) = self.peak(1);
        let (a_peak, _) = self.peak(0);
        let (c_peak, c_at) = self.peak(2);
        let (d_peak, _) = self.peak(3);
        let (e_peak, _) = self.peak(4);
        let b_p99 = self.latency_median(1, |cell| cell.p99);
        let c_p99 = self.latency_median(2, |cell| cell.p99);
        let micro = args.criterion_dir.as_deref().map(|dir| {
            [10usize, 1_000, 10_000].map(|n| criterion_median(dir, "route_authorize", n))
        });
        let scale: Option<Value> = args
            .scale_json
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok());
        let scale_check = |name: &str| scale.as_ref().and_then(|s| s.get(name)).cloned();

        let mut targets = vec![
            Target {
                what: "C/B throughput ≥ 1.0 (peak req/s, medians)".into(),
                measured: format!(
                    "{:.2} ({} at c={c_at} vs {} at c={b_at})",
                    c_peak / b_peak,
                    k(c_peak),
                    k(b_peak)
                ),
                met: Some(c_peak / b_peak >= 1.0),
            },
            Target {
                what: format!(
                    "C p99 ≤ 1.1 × B p99 at half of B's peak ({} req/s)",
                    self.rate
                ),
                measured: format!("{c_p99:.3} ms vs {b_p99:.3} ms ({:.2}×)", c_p99 / b_p99),
                met: Some(c_p99 <= 1.1 * b_p99),
            },
        ];
        match &micro {
            Some([Some(m10), Some(m1k), Some(m10k)]) => {
                targets.push(Target {
                    what: "route + authorize at 1,000 rules: median ≤ 1 µs".into(),
                    measured: format!("{m1k:.0} ns"),
                    met: Some(*m1k <= 1_000.0),
                });
                targets.push(Target {
                    what: "route + authorize at 10,000 rules ≤ 2 × at 10 rules".into(),
                    measured: format!("{m10k:.0} ns vs {m10:.0} ns ({:.2}×)", m10k / m10),
                    met: Some(*m10k <= 2.0 * m10),
                });
            }
            _ => targets.push(Target {
                what: "route + authorize (criterion)".into(),
                measured: "no criterion estimates found".into(),
                met: None,
            }),
        }
        match scale_check("memory") {
            Some(memory) => targets.push(Target {
                what: "RSS ≤ 64 MiB at 10,000 idle connections + 100,000 cached identities".into(),
                measured: format!(
                    "{:.1} MiB",
                    memory["rss_mib_identities_and_idle"]
                        .as_f64()
                        .unwrap_or(f64::NAN)
                ),
                met: memory["passed"].as_bool(),
            }),
            None => targets.push(Target {
                what: "RSS ≤ 64 MiB at 10,000 idle connections + 100,000 cached identities".into(),
                measured: "scale check not run".into(),
                met: None,
            }),
        }
        targets.push(Target {
            what: "zero token-info or token calls per request once warm".into(),
            measured: format!(
                "{calls} calls during {} measured gateway requests",
                self.gateway_requests
            ),
            met: Some(calls == 0 && self.gateway_requests > 0),
        });
        if let Some(flood) = scale_check("flood") {
            targets.push(Target {
                what: format!(
                    "RSS bounded under {} distinct invalid tokens",
                    flood["invalid_tokens"]
                ),
                measured: format!(
                    "{:.1} MiB at half, {:.1} MiB at the end",
                    flood["rss_mib_at_half"].as_f64().unwrap_or(f64::NAN),
                    flood["rss_mib_end"].as_f64().unwrap_or(f64::NAN)
                ),
                met: flood["passed"].as_bool(),
            });
        }
        if let Some(single) = scale_check("single-flight") {
            targets.push(Target {
                what: "1,000 concurrent first requests, 100 tokens, 10 instances: exactly 100 token-info calls and 10 mints".into(),
                measured: format!(
                    "{} token-info calls, {} mints, {}/{} answered 200",
                    single["token_info_calls"], single["token_mints"], single["ok_200"], single["requests"]
                ),
                met: single["passed"].as_bool(),
            });
        }
        let _ = writeln!(
            out,
            "## Targets\n\n| target | measured | |\n| --- | --- | --- |"
        );
        for target in &targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                target.what,
                target.measured,
                mark(target.met)
            );
        }
        let _ = writeln!(
            out,
            "\nRatios (peak throughput, medians): **C/B = {:.2}**, **D/B = {:.2}** (D/E, against nginx proxying the same POST: {:.2}), **C/A = {:.2}**.\n",
            c_peak / b_peak,
            d_peak / b_peak,
            d_peak / e_peak,
            c_peak / a_peak
        );

        // Throughput.
        let _ = writeln!(
            out,
            "## Throughput (closed loop, keep-alive, wrk 1 thread)\n\n\
             Requests per second, median of {} rounds (min–max in brackets). \
             At each configuration's peak: \"proxy CPU\" is the proxy's own CPU time in % of \
             one core and \"µs/req\" that time per request (the least noisy measure of its cost); \
             \"other on CPU {PROXY_CPU}\" is CPU {PROXY_CPU}'s time used by anything else (other \
             processes on a shared machine: noise); \"load CPU\" how busy CPU {LOAD_CPU} (load \
             tool + upstream) was: near 100% means the load side, not the proxy, set the pace.\n",
            args.rounds
        );
        let mut header = "| | configuration |".to_owned();
        let mut rule = "| --- | --- |".to_owned();
        for c in &args.connections {
            let _ = write!(header, " c={c} |");
            rule.push_str(" ---: |");
        }
        header.push_str(&format!(
            " peak | proxy CPU | µs/req | other on CPU {PROXY_CPU} | load CPU |"
        ));
        rule.push_str(" ---: | ---: | ---: | ---: | ---: |");
        let _ = writeln!(out, "{header}\n{rule}");
        for (i, setup) in self.setups.iter().enumerate() {
            let mut row = format!("| {} | {} |", setup.key, setup.what);
            for &c in &args.connections {
                let rps: Vec<f64> = self.cells[&(i, c)].iter().map(|cell| cell.rps).collect();
                let (low, high) = spread(&rps);
                if rps.len() > 1 {
                    let _ = write!(row, " {} ({}–{}) |", k(median(rps)), k(low), k(high));
                } else {
                    let _ = write!(row, " {} |", k(median(rps)));
                }
            }
            let (peak, at) = self.peak(i);
            let proxy_cpu = median(self.cells[&(i, at)].iter().map(|c| c.proxy_cpu).collect());
            let load_cpu = median(
                self.cells[&(i, at)]
                    .iter()
                    .map(|c| c.cpu_load_core)
                    .collect(),
            );
            let core = median(
                self.cells[&(i, at)]
                    .iter()
                    .map(|c| c.cpu_proxy_core)
                    .collect(),
            );
            let (proxy_text, per_request, other) = if setup.proxy.is_some() {
                (
                    format!("{proxy_cpu:.0}%"),
                    format!("{:.1}", micros_per_request(proxy_cpu, peak)),
                    format!("{:.0}%", (core - proxy_cpu).max(0.0)),
                )
            } else {
                ("—".into(), "—".into(), format!("{core:.0}%"))
            };
            let _ = writeln!(
                row,
                " **{}** | {proxy_text} | {per_request} | {other} | {load_cpu:.0}% |",
                k(peak)
            );
            out.push_str(&row);
        }

        // Latency.
        let _ = writeln!(
            out,
            "\n## Latency (open loop at {} req/s = half of B's peak)\n\n\
             oha, {} connections, `-q {}` with `--latency-correction` (coordinated omission \
             corrected), {} s per cell, median of {} rounds. Milliseconds.\n",
            self.rate, args.latency_connections, self.rate, args.latency_seconds, args.rounds
        );
        let _ = writeln!(
            out,
            "| | configuration | p50 | p99 | p99.9 | achieved req/s |\n| --- | --- | ---: | ---: | ---: | ---: |"
        );
        let mut overloaded = false;
        for (i, setup) in self.setups.iter().enumerate() {
            let achieved = self.latency_median(i, |c| c.rps);
            let mark = if achieved < 0.97 * self.rate as f64 {
                overloaded = true;
                " ⚠"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.0}{mark} |",
                setup.key,
                setup.what,
                self.latency_median(i, |c| c.p50),
                self.latency_median(i, |c| c.p99),
                self.latency_median(i, |c| c.p999),
                achieved,
            );
        }
        if overloaded {
            let _ = writeln!(
                out,
                "\n⚠ could not keep up with the offered rate (its peak throughput is below it): \
                 its latencies are those of a queue that only grows during the cell."
            );
        }
        self.rounds(&mut out);

        // Zero calls once warm.
        let w = &self.warm_stats;
        let g = &self.gateway_calls;
        let _ = writeln!(
            out,
            "\n## Zero calls once warm\n\n\
             The sandbox's counters (`GET /_sandbox/stats`, read in process) were read before \
             and after every gateway cell. Warming (one C and one D request) cost {} token-info \
             call(s), {} app-token mint(s) and {} `strip_bound_session` exchange(s); the {} \
             measured gateway requests then cost **{} token-info, {} client_credentials and {} \
             strip_bound_session calls**. Non-2xx answers and socket errors in all cells: {errors}. \
             Gateway RSS at the end of the load run: {:.1} MiB.\n",
            w.token_info_calls,
            w.client_credentials_calls,
            w.strip_bound_session_calls,
            self.gateway_requests,
            g.token_info_calls,
            g.client_credentials_calls,
            g.strip_bound_session_calls,
            self.gateway_rss_mib,
        );

        // Micro-benchmarks.
        let _ = writeln!(
            out,
            "## Request path micro-benchmarks (criterion, `benches/request_path.rs`)\n\n\
             Median time per request that matches one rule in the middle of the set, both \
             its conditions evaluated.\n\n\
             | rules | route + authorize | canonicalize + route + authorize |\n| ---: | ---: | ---: |"
        );
        for n in [10usize, 1_000, 10_000] {
            let dir = args.criterion_dir.as_deref();
            let _ = writeln!(
                out,
                "| {n} | {} | {} |",
                ns(dir.and_then(|d| criterion_median(d, "route_authorize", n))),
                ns(dir.and_then(|d| criterion_median(d, "canonicalize_route_authorize", n)))
            );
        }

        // Scale.
        let _ = writeln!(out, "\n## Scale checks (`bench/programs/scale.rs`)\n");
        match &scale {
            Some(scale) => {
                if let Some(memory) = scale.get("memory") {
                    let f = |key: &str| memory[key].as_f64().unwrap_or(f64::NAN);
                    let _ = writeln!(
                        out,
                        "- **Memory**: gateway RSS {:.1} MiB at start, {:.1} MiB with {} cached \
                         identities ({} token-info calls, {} app-token mints for {} instances), \
                         **{:.1} MiB** with {} idle keep-alive connections on top (sampled \
                         connections still open: {}); peak {:.1} MiB.",
                        f("rss_mib_started"),
                        f("rss_mib_identities"),
                        memory["identities"],
                        memory["token_info_calls"],
                        memory["app_token_mints"],
                        memory["instances"],
                        f("rss_mib_identities_and_idle"),
                        memory["idle_connections"],
                        memory["idle_sampled_still_open"].as_str().unwrap_or("?"),
                        f("rss_mib_peak"),
                    );
                }
                if let Some(flood) = scale.get("flood") {
                    let samples: Vec<String> = flood["samples"]
                        .as_array()
                        .map(|samples| {
                            samples
                                .iter()
                                .map(|s| {
                                    format!(
                                        "{}k: {:.1}",
                                        s["requests"].as_u64().unwrap_or(0) / 1000,
                                        s["rss_mib"].as_f64().unwrap_or(f64::NAN)
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "- **Invalid-token flood**: {} distinct invalid tokens in {:.0} s, all \
                         answered 401 ({} other), {} token-info calls. RSS (MiB) by requests \
                         sent: {}.",
                        flood["invalid_tokens"],
                        flood["seconds"].as_f64().unwrap_or(0.0),
                        flood["answered_other"],
                        flood["token_info_calls"],
                        samples.join(", "),
                    );
                }
                if let Some(single) = scale.get("single-flight") {
                    let _ = writeln!(
                        out,
                        "- **Single flight**: {} concurrent first requests ({} tokens × 10, {} \
                         instances) → {} token-info calls and {} app-token mints; {} answered 200.",
                        single["requests"],
                        single["tokens"],
                        single["instances"],
                        single["token_info_calls"],
                        single["token_mints"],
                        single["ok_200"],
                    );
                }
            }
            None => {
                let _ = writeln!(out, "Not run.");
            }
        }

        // What the profiles showed.
        let notes =
            std::fs::read_to_string(args.repo.join("bench/profile-notes.md")).unwrap_or_default();
        if !notes.trim().is_empty() {
            let _ = writeln!(out, "\n{}", notes.trim_end());
        }
        (out, valid)
    }
}
