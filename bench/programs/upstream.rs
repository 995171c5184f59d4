//! `bench_upstream`: the fixed-response upstream as its own process, so the
//! load benchmark can pin it to a core (`taskset`) apart from the proxy.
//!
//! ```sh
//! bench_upstream --listen 127.0.0.1:0 --max-seconds 1800
//! ```
//!
//! Prints `listening on ADDR` once bound, then serves on one thread until
//! killed or until `--max-seconds` have passed, so it never outlives a run.

mod support;

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let mut max_seconds = 1800u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--listen" => listen = value.parse().expect("--listen IP:PORT"),
            "--max-seconds" => max_seconds = value.parse().expect("--max-seconds N"),
            _ => panic!("usage: bench_upstream [--listen IP:PORT] [--max-seconds N]"),
        }
    }
    assert!(
        listen.ip().is_loopback(),
        "the bench upstream listens on loopback only"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime starts");
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await.expect("binds");
        println!("listening on {}", listener.local_addr().expect("bound"));
        tokio::select! {
            () = support::fixed::serve(listener) => {}
            () = tokio::time::sleep(Duration::from_secs(max_seconds)) => {
                eprintln!("bench_upstream: --max-seconds reached, exiting");
            }
        }
    });
}
