//! `wix-elevator test`: policy tests written as YAML next to the policies.
//!
//! ```yaml
//! cases:
//!   - name: a member reads their own profile
//!     request:
//!       method: GET
//!       path: "/members/v1/members/m-1?fieldsets=FULL"
//!       headers: { x-app-client: site-1 }          # optional; a list repeats a header
//!       body: { dataCollectionId: Reviews }        # optional; sent as application/json
//!     caller: { type: MEMBER, id: m-1, instance: inst-1 }   # optional: none is anonymous
//!     expect: { decision: allow, mode: elevate, rule: member-reads-own-profile }
//!   - name: another member's profile is refused
//!     request: { method: GET, path: /members/v1/members/m-2 }
//!     caller: { type: MEMBER, id: m-1, instance: inst-1 }
//!     expect: { decision: deny, reason: conditions_failed }
//! ```
//!
//! Each case goes through the evaluation `explain` uses (see
//! [`super::evaluate`]); a failing case prints that trace.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::evaluate::{evaluate, Evaluation, Outcome, ProbeCaller, Settings};
pub use super::test_file::{parse_cases, test_files, Case, Expected};
use crate::caller::IdentitySource;
use crate::diagnostic::Diagnostic;
use crate::policy::{PolicySet, Position};

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// What happened.
    pub evaluation: Evaluation,
    /// Why it failed; `None` if it passed.
    pub failure: Option<String>,
}

/// The outcome of a test run.
#[derive(Debug, Default)]
pub struct TestReport {
    /// Every case, in file order.
    pub results: Vec<CaseResult>,
    /// Problems in the test files themselves (each also fails the run).
    pub problems: Vec<Diagnostic>,
    /// Rules no case was allowed by: `(id, file, position)`.
    pub uncovered: Vec<(String, PathBuf, Position)>,
    /// How many rules the policy set has.
    pub rules: usize,
}

impl TestReport {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_none()).count()
    }

    /// Cases that failed, plus one per problem in the test files.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed() + self.problems.len()
    }

    /// The report as printed: failures with their traces, problems,
    /// coverage, and last a line `N passed, N failed`.
    pub fn render(&self, verbose: bool) -> String {
        let mut out = String::new();
        for problem in &self.problems {
            let _ = writeln!(out, "{problem}");
        }
        for result in &self.results {
            let case = &result.case;
            let place = format!("{}:{}", case.file.display(), case.at);
            match &result.failure {
                None if verbose => {
                    let _ = writeln!(out, "ok   {place} {}", case.name);
                }
                None => {}
                Some(why) => {
                    let _ = writeln!(out, "FAIL {place} {}", case.name);
                    let _ = writeln!(out, "  {why}");
                    let _ = writeln!(out, "  request: {}", result.evaluation.request);
                    let caller = caller_text(&case.caller);
                    for rule in &result.evaluation.rules {
                        out.push_str(&rule.render("  ", &caller));
                    }
                }
            }
        }
        if self.uncovered.is_empty() {
            let _ = writeln!(
                out,
                "coverage: every rule ({}) allowed at least one case",
                self.rules
            );
        } else {
            let _ = writeln!(
                out,
                "coverage: {} of {} rules allowed no case:",
                self.uncovered.len(),
                self.rules
            );
            for (id, file, at) in &self.uncovered {
                let _ = writeln!(out, "  {id} ({}:{at})", file.display());
            }
        }
        let _ = writeln!(out, "{} passed, {} failed", self.passed(), self.failed());
        out
    }
}

/// The caller in words, for traces.
pub fn caller_text(caller: &ProbeCaller) -> String {
    match caller {
        ProbeCaller::Anonymous => "an anonymous request".to_owned(),
        ProbeCaller::Refused(error) => format!("a refused credential ({error})"),
        ProbeCaller::Known(c) => format!(
            "{} {} with {}",
            c.subject_type,
            c.subject_id,
            match c.source {
                IdentitySource::AccessToken => "an access token",
                IdentitySource::SignedInstance => "a signed instance",
            }
        ),
    }
}

/// Runs every case of `files` against `policies`.
pub fn run(policies: &PolicySet, files: &[PathBuf], settings: &Settings) -> TestReport {
    let mut report = TestReport {
        rules: policies.rules().len(),
        ..TestReport::default()
    };
    let mut covered = BTreeSet::new();
    let known: BTreeSet<&str> = policies.rules().iter().map(|r| r.id()).collect();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                report
                    .problems
                    .push(Diagnostic::error(file, 0, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        for case in parse_cases(file, &text, &mut report.problems) {
            if let Expected::Allow {
                rule: Some(rule), ..
            } = &case.expect
            {
                if !known.contains(rule.as_str()) {
                    report.problems.push(Diagnostic::error(
                        file,
                        case.at.line,
                        case.at.column,
                        format!("case `{}`: no rule has the id `{rule}`", case.name),
                    ));
                    continue;
                }
            }
            let evaluation = match evaluate(policies, &case.probe, &case.caller, settings) {
                Ok(evaluation) => evaluation,
                Err(error) => {
                    report.problems.push(Diagnostic::error(
                        file,
                        case.at.line,
                        case.at.column,
                        format!("case `{}`: {error}", case.name),
                    ));
                    continue;
                }
            };
            if let Outcome::Allow { rule, .. } = &evaluation.outcome {
                covered.insert(rule.clone());
            }
            let failure = mismatch(&case, &evaluation.outcome);
            report.results.push(CaseResult {
                case,
                evaluation,
                failure,
            });
        }
    }
    report
        .problems
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.uncovered = policies
        .rules()
        .iter()
        .filter(|r| !covered.contains(r.id()))
        .map(|r| (r.id().to_owned(), r.file().to_path_buf(), r.position()))
        .collect();
    report
}

/// Why the outcome is not the one expected, if it is not.
fn mismatch(case: &Case, got: &Outcome) -> Option<String> {
    let expected = match &case.expect {
        Expected::Allow { mode, rule } => {
            let by = rule.as_ref().map_or(String::new(), |r| format!(" by {r}"));
            format!("allow{by} ({mode})")
        }
        Expected::Deny { reason, status } => {
            let mut text = "deny".to_owned();
            if let Some(status) = status {
                let _ = write!(text, " {status}");
            }
            if let Some(reason) = reason {
                let _ = write!(text, " ({reason})");
            }
            text
        }
    };
    let ok = match (&case.expect, got) {
        (
            Expected::Allow { mode, rule },
            Outcome::Allow {
                rule: got_rule,
                mode: got_mode,
                ..
            },
        ) => got_mode.to_string() == *mode && rule.as_ref().is_none_or(|r| r == got_rule),
        (
            Expected::Deny { reason, status },
            Outcome::Deny {
                status: got_status,
                reason: got_reason,
                ..
            },
        ) => {
            reason.as_ref().is_none_or(|r| r == got_reason)
                && status.is_none_or(|s| s == *got_status)
        }
        _ => false,
    };
    (!ok).then(|| format!("expected {expected}, got {got}"))
}

/// `wix-elevator test`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TestArgs {
    /// Where the config and policies are.
    #[command(flatten)]
    pub sources: super::Sources,
    /// Test files or folders [default: the `tests/` folder next to the policies].
    pub paths: Vec<PathBuf>,
    /// List passing cases too.
    #[arg(short, long)]
    pub verbose: bool,
    /// Fail when a rule allows no case.
    #[arg(long)]
    pub require_coverage: bool,
}

/// Runs `test`: prints the report to `out` and returns the exit status
/// (problems with the config or policies go to `err`).
pub fn run_cli(args: &TestArgs, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> u8 {
    let fail = |err: &mut dyn std::io::Write, text: String| {
        let _ = writeln!(err, "{text}");
        super::EXIT_FAILURE
    };
    let loaded = match args.sources.load(false) {
        Ok(loaded) => loaded,
        Err(d) => return fail(err, crate::diagnostic::Diagnostics(d).to_string()),
    };
    let policies = match PolicySet::load(&loaded.policies) {
        Ok(set) => set,
        Err(d) => return fail(err, crate::diagnostic::Diagnostics(d).to_string()),
    };
    let paths = if args.paths.is_empty() {
        vec![super::default_tests_dir(&loaded.policies)]
    } else {
        args.paths.clone()
    };
    let files = match test_files(&paths) {
        Ok(files) => files,
        Err(text) => return fail(err, text),
    };
    let report = run(&policies, &files, &loaded.settings());
    let _ = out.write_all(report.render(args.verbose).as_bytes());
    let failed = report.failed() > 0 || (args.require_coverage && !report.uncovered.is_empty());
    if failed {
        super::EXIT_FAILURE
    } else {
        super::EXIT_OK
    }
}
