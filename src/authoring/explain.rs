//! `wix-elevator explain`: one described request through the gateway's
//! phases, without forwarding it, printed as a trace:
//!
//! ```text
//! request     GET /members/v1/members/m-1?fieldsets=FULL
//! caller      MEMBER m-1 with an access token (instance inst-1)
//! route       2 rules match
//!   rule member-reads-own-profile (policies/members.yaml:3:9, elevate): allows
//!     captures: memberId = "m-1"
//!     pass path.memberId equals caller.subjectId: saw "m-1"
//!     pass any:
//!       FAIL query.fieldsets absent: saw "FULL"
//!       pass query.fieldsets one_of ["PUBLIC", "FULL"]: saw "FULL"
//!   rule anyone-reads-public-profile (policies/members.yaml:15:9, elevate): not evaluated: an earlier rule decided
//! decision    allow by member-reads-own-profile (elevate)
//! credential  app token for instance inst-1 (client_credentials); ...
//! ```

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use http::HeaderValue;

use super::evaluate::{evaluate, Evaluation, Outcome, Probe, ProbeCaller};
use super::policy_tests::caller_text;
use super::{Sources, EXIT_DENIED, EXIT_FAILURE, EXIT_OK};
use crate::caller::{Caller, CallerType, IdentitySource};
use crate::identity::{token_from_header, IdentityService};
use crate::policy::PolicySet;
use crate::wix::WixOAuth;

/// How a `--caller` proved who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// A Wix access token, as `fetchWithAuth` sends.
    #[default]
    AccessToken,
    /// The legacy signed `instance` query parameter.
    SignedInstance,
}

/// `wix-elevator explain`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExplainArgs {
    /// Where the config and policies are.
    #[command(flatten)]
    pub sources: Sources,
    /// The request method, e.g. GET.
    pub method: String,
    /// The path with its query, as the client sends it (percent-encoded).
    pub path: String,
    /// A request header, `name: value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A file holding the request body (`-` reads standard input); sent as
    /// application/json unless a Content-Type header says otherwise.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// The caller, as token-info would describe them.
    #[arg(long, value_name = "TYPE:ID:INSTANCE[:SITE]", conflicts_with = "token")]
    pub caller: Option<String>,
    /// How the `--caller` proved who they are.
    #[arg(long, value_enum, default_value_t = SourceArg::AccessToken, requires = "caller")]
    pub source: SourceArg,
    /// A real caller token, checked with the configured token-info (needs
    /// the config and its `${VAR}`s).
    #[arg(long, env = "WIX_ELEVATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Parses `TYPE:ID:INSTANCE[:SITE]`.
pub fn parse_caller(text: &str, source: SourceArg) -> Result<Caller, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (kind, id, instance, site) = match parts.as_slice() {
        [kind, id, instance] => (*kind, *id, *instance, None),
        [kind, id, instance, site] => (*kind, *id, *instance, Some((*site).to_owned())),
        _ => {
            return Err(format!(
                "--caller `{text}`: expected TYPE:ID:INSTANCE[:SITE]"
            ))
        }
    };
    let subject_type = CallerType::parse(kind).ok_or_else(|| {
        format!("--caller: unknown type `{kind}`: expected VISITOR, MEMBER or USER")
    })?;
    if id.is_empty() || instance.is_empty() {
        return Err("--caller: the id and the instance must not be empty".into());
    }
    Ok(Caller::new(
        subject_type,
        id.into(),
        instance.into(),
        site.filter(|s| !s.is_empty()).map(Into::into),
        match source {
            SourceArg::AccessToken => IdentitySource::AccessToken,
            SourceArg::SignedInstance => IdentitySource::SignedInstance,
        },
    ))
}

/// The request `args` describe.
pub fn probe(args: &ExplainArgs) -> Result<Probe, String> {
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("-H `{header}`: expected `name: value`"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let body = match &args.body {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read the body from standard input: {e}"))?;
            Some(bytes)
        }
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("--body {}: {e}", path.display()))?)
        }
    };
    Ok(Probe {
        method: args.method.clone(),
        target: args.path.clone(),
        headers,
        body,
    })
}

/// The trace as printed.
pub fn render(evaluation: &Evaluation, caller: &ProbeCaller) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "request     {}", evaluation.request);
    let who = match caller {
        ProbeCaller::Known(c) => {
            let site = c
                .site_id
                .as_ref()
                .map_or(String::new(), |s| format!(", site {s}"));
            format!("{} (instance {}{site})", caller_text(caller), c.instance_id)
        }
        other => caller_text(other),
    };
    let _ = writeln!(out, "caller      {who}");
    let routed = evaluation.rules.len();
    let _ = writeln!(
        out,
        "route       {}",
        match routed {
            0 => "no rule matches this method and path".to_owned(),
            1 => "1 rule matches".to_owned(),
            n => format!("{n} rules match"),
        }
    );
    let caller_words = caller_text(caller);
    for rule in &evaluation.rules {
        out.push_str(&rule.render("  ", &caller_words));
    }
    match &evaluation.outcome {
        Outcome::Allow { credential, .. } => {
            let _ = writeln!(out, "decision    {}", evaluation.outcome);
            let _ = writeln!(out, "credential  {credential}");
        }
        Outcome::Deny { .. } => {
            let _ = writeln!(out, "decision    {}", evaluation.outcome);
        }
    }
    out
}

/// Runs `explain`: prints the trace to `out` and returns the exit status
/// (problems with the arguments or config go to `err`).
pub async fn run(args: &ExplainArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match explain(args, out).await {
        Ok(status) => status,
        Err(message) => {
            let _ = writeln!(err, "{message}");
            EXIT_FAILURE
        }
    }
}

async fn explain(args: &ExplainArgs, out: &mut dyn Write) -> Result<u8, String> {
    let to_text = |diagnostics: Vec<crate::diagnostic::Diagnostic>| {
        crate::diagnostic::Diagnostics(diagnostics).to_string()
    };
    let loaded = args.sources.load(args.token.is_some()).map_err(to_text)?;
    let policies = PolicySet::load(&loaded.policies).map_err(to_text)?;
    let probe = probe(args)?;
    let caller = match (&args.caller, &args.token) {
        (Some(text), _) => ProbeCaller::Known(parse_caller(text, args.source)?),
        (None, Some(token)) => {
            let config = loaded
                .config
                .as_ref()
                .ok_or("--token needs the config (token-info's address and the app id)")?;
            // A throwaway registry: explain counts nothing anyone scrapes.
            let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
            let wix = WixOAuth::new(config, metrics.clone());
            let identity = IdentityService::new(config, wix, metrics);
            let header =
                HeaderValue::from_str(token).map_err(|_| "--token is not a valid header value")?;
            let authenticated = match token_from_header(&header) {
                Ok(token) => identity.authenticate(&token).await,
                Err(error) => Err(error),
            };
            match authenticated {
                Ok(caller) => ProbeCaller::Known(caller),
                Err(error) => ProbeCaller::Refused(error),
            }
        }
        (None, None) => ProbeCaller::Anonymous,
    };
    let evaluation =
        evaluate(&policies, &probe, &caller, &loaded.settings()).map_err(|e| e.to_string())?;
    let _ = out.write_all(render(&evaluation, &caller).as_bytes());
    Ok(match &evaluation.outcome {
        Outcome::Allow { .. } => EXIT_OK,
        // token-info could not be asked: no decision was made.
        Outcome::Deny { status, .. } if *status >= 500 => EXIT_FAILURE,
        Outcome::Deny { .. } => EXIT_DENIED,
    })
}
