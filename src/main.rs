//! The `wix-elevator` command line. Everything it runs lives in the library.

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode};

mod plain_fields;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;
use wix_elevator::{
    authoring::{self, check::CheckArgs, explain::ExplainArgs, policy_tests::TestArgs},
    demo, sandbox,
    secret::Secret,
    serve,
};

/// mimalloc: less CPU per request than the system allocator, the same
/// memory (README, "Dependencies").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A policy-gated gateway that elevates Wix frontend calls to the app's
/// permissions, only where a policy allows it.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WIX_ELEVATOR_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The gateway configuration.
        #[arg(long, default_value = "proxy.yaml", env = "WIX_ELEVATOR_CONFIG")]
        config: PathBuf,
    },
    /// Run the Wix emulator alone, for local development.
    Sandbox {
        /// Where the sandbox listens.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// The app id the sandbox issues tokens for.
        #[arg(long, env = "WIX_APP_ID", default_value = demo::DEMO_APP_ID)]
        app_id: String,
        /// The app secret the sandbox checks.
        #[arg(long, env = "WIX_APP_SECRET", default_value = demo::DEMO_APP_SECRET, hide_env_values = true, hide_default_value = true)]
        app_secret: String,
    },
    /// Start the sandbox and the gateway together and print curl lines to try.
    Demo {
        /// The gateway configuration; its Wix base URL is replaced by the sandbox.
        #[arg(long, default_value = "proxy.yaml")]
        config: PathBuf,
        /// Where the gateway listens (default: the config's `listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Report every problem in the config and the policies, compiler style.
    /// Exit 1 on any error.
    Check(CheckArgs),
    /// Evaluate one request against the policies without forwarding it, and
    /// print the trace. Exit 0 if allowed, 2 if refused, 1 on a usage or
    /// config error.
    Explain(ExplainArgs),
    /// Run the policy tests (default: the `tests/` folder next to the
    /// policies). Exit 1 if any case fails.
    Test(TestArgs),
}

fn main() -> ExitCode {
    // Usage errors exit 1, like every other failure (clap's default is 2,
    // which `explain` uses for a refused request).
    let cli = Cli::try_parse().unwrap_or_else(|error| {
        let _ = error.print();
        std::process::exit(if error.use_stderr() { 1 } else { 0 })
    });
    init_logging(cli.log_format);
    runtime().block_on(run(cli))
}

/// The tokio runtime: multi-threaded, one worker per core (or
/// `TOKIO_WORKER_THREADS`), except when exactly one worker is asked for.
/// Then the single-threaded scheduler does the same work without the
/// multi-threaded one's cross-thread bookkeeping: 18% less CPU per proxied
/// request (bench/RESULTS.md), as for a gateway pinned to one core.
fn runtime() -> tokio::runtime::Runtime {
    let one_worker = std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|value| value.trim() == "1");
    let mut builder = if one_worker {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

async fn run(cli: Cli) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let result = match cli.command {
        Command::Check(args) => return ExitCode::from(authoring::check::run(&args, &mut out)),
        Command::Explain(args) => {
            return ExitCode::from(authoring::explain::run(&args, &mut out, &mut err).await)
        }
        Command::Test(args) => {
            return ExitCode::from(authoring::policy_tests::run_cli(&args, &mut out, &mut err))
        }
        Command::Serve { config } => serve::serve(&config).await,
        Command::Sandbox {
            listen,
            app_id,
            app_secret,
        } => {
            let config = sandbox::SandboxConfig::new(app_id, Secret::new(app_secret));
            run_sandbox(listen, config).await
        }
        Command::Demo { config, listen } => demo::run(&config, listen).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sandbox(
    listen: SocketAddr,
    config: sandbox::SandboxConfig,
) -> Result<(), serve::StartError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let sandbox = sandbox::Sandbox::start(listener, config);
    println!("sandbox listening on {}", sandbox.base_url());
    serve::shutdown_signal().await;
    sandbox.shutdown().await;
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours for a terminal only: a log file or the journal gets plain
    // text (escape codes there are noise, and cost a decision record about
    // a tenth of its formatting time).
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text if ansi => builder.init(),
        LogFormat::Text => builder.fmt_fields(plain_fields::PlainFields).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
