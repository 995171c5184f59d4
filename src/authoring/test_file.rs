//! The policy test file format (see [`super::policy_tests`]): the YAML as
//! written, and its checked form, [`Case`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::evaluate::{Probe, ProbeCaller};
use crate::caller::{Caller, CallerType, IdentitySource};
use crate::diagnostic::Diagnostic;
use crate::policy::Position;

/// One test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    cases: Vec<Spanned<CaseDoc>>,
}

/// One case, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDoc {
    /// What the case shows, for the report.
    pub name: String,
    /// The request.
    pub request: RequestDoc,
    /// Who sends it; none means no credential at all.
    #[serde(default)]
    pub caller: Option<CallerDoc>,
    /// The decision expected.
    pub expect: ExpectDoc,
}

/// The request of a case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDoc {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as a client sends them (percent-encoded).
    pub path: String,
    /// Headers; a list value sends the header once per item.
    #[serde(default)]
    pub headers: BTreeMap<String, OneOrMany>,
    /// A JSON body, written as YAML.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// A body sent exactly as written (for bodies that are not valid JSON).
    #[serde(default)]
    pub raw_body: Option<String>,
}

/// A header value, or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// The header repeated, once per value.
    Many(Vec<String>),
}

/// The caller of a case, as the authenticate phase would establish it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerDoc {
    /// `VISITOR`, `MEMBER` or `USER`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The visitor, member or user id.
    pub id: String,
    /// The app instance.
    pub instance: String,
    /// The site, if known.
    #[serde(default)]
    pub site: Option<String>,
    /// `access_token` (default) or `signed_instance`.
    #[serde(default)]
    pub source: Option<String>,
}

/// The expected decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDoc {
    /// `allow` or `deny`.
    pub decision: String,
    /// For `allow`: `elevate` or `pass_through` (required).
    #[serde(default)]
    pub mode: Option<String>,
    /// For `allow`: the deciding rule's id.
    #[serde(default)]
    pub rule: Option<String>,
    /// For `deny`: the reason (`no_route`, `caller_not_admitted`,
    /// `conditions_failed`, `unauthenticated`, `bad_request`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// For `deny`: the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
}

/// One case, checked and ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its file.
    pub file: PathBuf,
    /// Where it starts.
    pub at: Position,
    /// Its name.
    pub name: String,
    /// The request.
    pub probe: Probe,
    /// The caller.
    pub caller: ProbeCaller,
    /// The decision expected.
    pub expect: Expected,
}

/// The decision a case expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Forwarded with this mode, by this rule if given.
    Allow {
        /// `elevate` or `pass_through`.
        mode: String,
        /// The deciding rule's id.
        rule: Option<String>,
    },
    /// Refused, for this reason and with this status if given.
    Deny {
        /// The reason code.
        reason: Option<String>,
        /// The HTTP status.
        status: Option<u16>,
    },
}

/// The test files under `paths`: files as given, folders' `*.yaml` / `*.yml`
/// files (not hidden, not in subfolders) sorted by name.
pub fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = crate::policy::yaml_files_in(path)
                .map_err(|e| format!("{}: cannot read folder: {e}", path.display()))?;
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    if files.is_empty() {
        return Err("no policy test files found".to_owned());
    }
    Ok(files)
}

/// Reads the cases of one test file; problems are reported, not fatal.
pub fn parse_cases(file: &Path, text: &str, problems: &mut Vec<Diagnostic>) -> Vec<Case> {
    let doc: TestFile = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(error) => {
            problems.push(Diagnostic::from_yaml(file, &error));
            return Vec::new();
        }
    };
    let mut cases = Vec::new();
    for spanned in doc.cases {
        let at = Position::from_location(&spanned.referenced);
        match case(file, at, spanned.value) {
            Ok(case) => cases.push(case),
            Err(message) => problems.push(Diagnostic::error(file, at.line, at.column, message)),
        }
    }
    cases
}

fn case(file: &Path, at: Position, doc: CaseDoc) -> Result<Case, String> {
    let name = doc.name;
    let fail = |message: String| format!("case `{name}`: {message}");
    let mut headers = Vec::new();
    for (header, values) in doc.request.headers {
        match values {
            OneOrMany::One(value) => headers.push((header, value)),
            OneOrMany::Many(values) => {
                headers.extend(values.into_iter().map(|v| (header.clone(), v)))
            }
        }
    }
    let body = match (doc.request.body, doc.request.raw_body) {
        (Some(_), Some(_)) => return Err(fail("give `body` or `raw_body`, not both".into())),
        (Some(json), None) => Some(serde_json::to_vec(&json).map_err(|e| fail(e.to_string()))?),
        (None, Some(raw)) => Some(raw.into_bytes()),
        (None, None) => None,
    };
    let caller = match doc.caller {
        None => ProbeCaller::Anonymous,
        Some(c) => {
            let subject_type = CallerType::parse(&c.kind).ok_or_else(|| {
                fail(format!(
                    "unknown caller type `{}`: expected VISITOR, MEMBER or USER",
                    c.kind
                ))
            })?;
            let source = match c.source.as_deref() {
                None | Some("access_token") => IdentitySource::AccessToken,
                Some("signed_instance") => IdentitySource::SignedInstance,
                Some(other) => {
                    return Err(fail(format!(
                        "unknown caller source `{other}`: expected access_token or signed_instance"
                    )))
                }
            };
            ProbeCaller::Known(Caller::new(
                subject_type,
                c.id.into(),
                c.instance.into(),
                c.site.map(Into::into),
                source,
            ))
        }
    };
    let e = doc.expect;
    let expect = match e.decision.as_str() {
        "allow" => {
            if e.reason.is_some() || e.status.is_some() {
                return Err(fail(
                    "`reason` and `status` are for `decision: deny`".into(),
                ));
            }
            let mode = e.mode.ok_or_else(|| {
                fail("`decision: allow` needs a `mode` (elevate or pass_through)".into())
            })?;
            if mode != "elevate" && mode != "pass_through" {
                return Err(fail(format!(
                    "unknown mode `{mode}`: expected elevate or pass_through"
                )));
            }
            Expected::Allow { mode, rule: e.rule }
        }
        "deny" => {
            if e.mode.is_some() || e.rule.is_some() {
                return Err(fail("`mode` and `rule` are for `decision: allow`".into()));
            }
            Expected::Deny {
                reason: e.reason,
                status: e.status,
            }
        }
        other => {
            return Err(fail(format!(
                "unknown decision `{other}`: expected allow or deny"
            )))
        }
    };
    Ok(Case {
        file: file.to_path_buf(),
        at,
        name,
        probe: Probe {
            method: doc.request.method,
            target: doc.request.path,
            headers,
            body,
        },
        caller,
        expect,
    })
}
