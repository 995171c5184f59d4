//! Tools for the people who write policies, run before anything is
//! deployed:
//!
//! - [`check`]: every problem in the config and the policies, compiler style;
//! - [`explain`]: one described request through the gateway's own phases,
//!   traced rule by rule and condition by condition, without forwarding it;
//! - [`policy_tests`]: YAML test cases next to the policies, with a trace for
//!   each failure and per-rule coverage.
//!
//! `explain` and `test` share [`evaluate`]: the gateway's canonicalization,
//! routing, body parsing and evaluator, so they refuse what the gateway
//! refuses and decide what it decides.
//!
//! Exit statuses: [`EXIT_OK`] (no errors, every test passed, or `explain`
//! allowed), [`EXIT_FAILURE`] (errors, failed tests, or a usage or config
//! problem) and [`EXIT_DENIED`] (`explain` only: the gateway would refuse
//! the request).

pub mod check;
pub mod evaluate;
pub mod explain;
pub mod policy_tests;
pub mod test_file;
pub mod trace;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use evaluate::Settings;

/// Success: no errors, every test passed, or `explain` allowed the request.
pub const EXIT_OK: u8 = 0;
/// Errors in the config, policies or tests; a failed test; a usage error.
pub const EXIT_FAILURE: u8 = 1;
/// `explain`: the gateway would refuse the request.
pub const EXIT_DENIED: u8 = 2;

/// Where the authoring commands find the config and the policies.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Sources {
    /// The gateway configuration [default: proxy.yaml].
    #[arg(long, env = "WIX_ELEVATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// A policy file or folder to use instead of the config's `policies`.
    /// Given without `--config`, no config is read.
    #[arg(long)]
    pub policies: Option<PathBuf>,
}

/// The config (if one was read) and the policy path to use.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config, if one was read.
    pub config: Option<Config>,
    /// The config file and its text, for showing lines in diagnostics.
    pub config_source: Option<(PathBuf, String)>,
    /// The policy file or folder.
    pub policies: PathBuf,
}

impl Loaded {
    /// The gateway settings evaluations depend on (defaults without a config).
    pub fn settings(&self) -> Settings {
        self.config
            .as_ref()
            .map_or_else(Settings::default, |c| Settings {
                body_limit: c.body_limit,
                pass_through: c.wix.pass_through,
            })
    }
}

impl Sources {
    /// Reads the config, unless only `--policies` was given.
    ///
    /// With `strict_env` false, a `${VAR}` that is not set reads as a
    /// placeholder: checking policies needs no secrets, so CI can run
    /// `check` and `test` without the app secret.
    pub fn load(&self, strict_env: bool) -> Result<Loaded, Vec<Diagnostic>> {
        if let (Some(policies), None) = (&self.policies, &self.config) {
            return Ok(Loaded {
                config: None,
                config_source: None,
                policies: policies.clone(),
            });
        }
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("proxy.yaml"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| vec![Diagnostic::error(&path, 0, 0, format!("cannot read: {e}"))])?;
        // Overrides (`WIX_ELEVATOR_*`) are only ever what the environment
        // says; the placeholder stands in for `${VAR}` secrets alone.
        let env = |name: &str| {
            std::env::var(name).ok().or_else(|| {
                (!strict_env && !name.starts_with(crate::config::ENV_PREFIX))
                    .then(|| format!("unset-{name}"))
            })
        };
        let config = Config::parse(&path, &text, &env).map_err(|d| d.0)?;
        Ok(Loaded {
            policies: self
                .policies
                .clone()
                .unwrap_or_else(|| config.policies.clone()),
            config: Some(config),
            config_source: Some((path, text)),
        })
    }
}

/// The folder policy tests live in by default: `tests/` next to the policy
/// files.
pub fn default_tests_dir(policies: &Path) -> PathBuf {
    if policies.is_dir() {
        policies.join("tests")
    } else {
        policies
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("tests")
    }
}
