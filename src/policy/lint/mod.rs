//! Lints: policies that load, but probably do not say what their author
//! meant. Each is a warning with a stable kebab-case code, shown as
//! `[code]`, which a rule can silence for itself with
//! `allow_warnings: [code]`.
//!
//! The cross-rule lints (`shadowed-rule`, `conflicting-modes`) are
//! conservative: they only report what they can prove from the rules'
//! routes, callers and the conditions written at the top level of `when`
//! (see the `overlap` module), so a silent run does not prove that no two rules
//! interact, but a warning is never a false alarm about the routes.

mod overlap;

use std::fmt;

use http::Method;

use super::compile::caller_bit;
use super::condition::{Condition, Selector};
use super::diagnostics::{Diagnostics, Position};
use super::{Mode, Rule};
use crate::caller::CallerType;
use overlap::RuleShape;

/// A probable mistake that does not stop a policy set from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lint {
    /// An `elevate` rule admits `VISITOR` and has no `when` conditions.
    ElevatedVisitorUnconditional,
    /// An `elevate` rule's path ends in `**` or a glob segment.
    ElevatedWildcardPath,
    /// An earlier rule always decides every request this rule could allow.
    ShadowedRule,
    /// An earlier rule with another mode decides some requests this rule
    /// would allow.
    ConflictingModes,
    /// A rule with body conditions matches GET, HEAD or DELETE.
    BodyConditionWithoutBody,
    /// A method, caller type or identity source is listed twice.
    DuplicateEntry,
    /// A policy file has no rules.
    EmptyFile,
    /// An `elevate` rule captures a path segment no condition reads.
    UnusedCapture,
}

impl Lint {
    /// Every lint, in the order the reference documents them.
    pub const ALL: [Lint; 8] = [
        Lint::ElevatedVisitorUnconditional,
        Lint::ElevatedWildcardPath,
        Lint::ShadowedRule,
        Lint::ConflictingModes,
        Lint::BodyConditionWithoutBody,
        Lint::DuplicateEntry,
        Lint::EmptyFile,
        Lint::UnusedCapture,
    ];

    /// The stable code, as written in `allow_warnings` and shown as `[code]`.
    pub fn code(self) -> &'static str {
        match self {
            Lint::ElevatedVisitorUnconditional => "elevated-visitor-unconditional",
            Lint::ElevatedWildcardPath => "elevated-wildcard-path",
            Lint::ShadowedRule => "shadowed-rule",
            Lint::ConflictingModes => "conflicting-modes",
            Lint::BodyConditionWithoutBody => "body-condition-without-body",
            Lint::DuplicateEntry => "duplicate-entry",
            Lint::EmptyFile => "empty-file",
            Lint::UnusedCapture => "unused-capture",
        }
    }

    /// The lint with this code.
    pub fn parse(code: &str) -> Option<Lint> {
        Self::ALL.into_iter().find(|lint| lint.code() == code)
    }

    /// This lint's bit in a rule's set of silenced lints.
    pub(crate) fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Every code, for messages.
    pub(crate) fn codes() -> String {
        Self::ALL.map(Lint::code).join(", ")
    }
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Methods whose requests carry no body in Wix's APIs.
const BODYLESS: [Method; 3] = [Method::GET, Method::HEAD, Method::DELETE];

/// Runs every rule-level and cross-rule lint over a compiled set.
pub(crate) fn run(rules: &[Rule], diags: &mut Diagnostics) {
    let shapes: Vec<RuleShape<'_>> = rules.iter().map(RuleShape::new).collect();
    for (i, rule) in rules.iter().enumerate() {
        let mut warn = |lint: Lint, at: Position, message: String| {
            if rule.allowed_warnings & lint.bit() == 0 {
                diags.lint(&rule.file, at, lint, message);
            }
        };
        let route = format!("{} {}", methods_text(rule), rule.template.as_str());
        let unconditional = matches!(&rule.condition, Condition::All(items) if items.is_empty());
        if rule.mode == Mode::Elevate {
            if unconditional && rule.callers & caller_bit(CallerType::Visitor) != 0 {
                warn(
                    Lint::ElevatedVisitorUnconditional,
                    rule.at,
                    format!(
                        "rule `{}` elevates every anonymous visitor on `{route}` with no conditions: anyone can make this call with the app's permissions",
                        rule.id
                    ),
                );
            }
            // A capture is written to be checked: one nothing reads admits any
            // segment there, as a rule cut short before its `when` would.
            let mut read = Vec::new();
            rule.condition.selectors(&mut |selector| {
                if let Selector::Path(index) = selector {
                    read.push(*index);
                }
            });
            for (index, name) in rule.template.capture_names().enumerate() {
                if !read.contains(&index) {
                    warn(
                        Lint::UnusedCapture,
                        rule.at,
                        format!(
                            "rule `{}` elevates any `{{{name}}}` on `{route}`: no condition reads `path.{name}`",
                            rule.id
                        ),
                    );
                }
            }
            if shapes[i].ends_in_wildcard() {
                warn(
                    Lint::ElevatedWildcardPath,
                    rule.at,
                    format!(
                        "rule `{}` elevates a path ending in a wildcard (`{}`): every endpoint Wix adds under it is elevated too; name the endpoints",
                        rule.id,
                        rule.template.as_str()
                    ),
                );
            }
        }
        if let Some(at) = first_body_test(&rule.condition) {
            let bodyless: Vec<&str> = rule
                .methods()
                .filter(|m| BODYLESS.contains(m))
                .map(Method::as_str)
                .collect();
            if !bodyless.is_empty() {
                warn(
                    Lint::BodyConditionWithoutBody,
                    at,
                    format!(
                        "rule `{}` reads the body but matches {}, which carries no body: there every body condition but `absent` fails",
                        rule.id,
                        bodyless.join(", ")
                    ),
                );
            }
        }
        let shape = &shapes[i];
        if let Some(earlier) = shapes[..i].iter().find(|a| a.shadows(shape)) {
            warn(
                Lint::ShadowedRule,
                rule.at,
                format!(
                    "rule `{}` never applies: rule `{}` ({}:{}) comes first, matches every request it matches, admits the same callers, and its conditions hold whenever these do",
                    rule.id,
                    earlier.rule.id,
                    earlier.rule.file.display(),
                    earlier.rule.at
                ),
            );
        } else if let Some(earlier) = shapes[..i].iter().find(|a| a.conflicts(shape)) {
            warn(
                Lint::ConflictingModes,
                rule.at,
                format!(
                    "rule `{}` ({}) and the earlier rule `{}` ({}, {}:{}) both allow some of the same requests for the same callers; for those, `{}` always decides",
                    rule.id,
                    rule.mode,
                    earlier.rule.id,
                    earlier.rule.mode,
                    earlier.rule.file.display(),
                    earlier.rule.at,
                    earlier.rule.id
                ),
            );
        }
    }
}

fn methods_text(rule: &Rule) -> String {
    rule.methods()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join("|")
}

/// Where the first test that reads the body is written, if any.
fn first_body_test(condition: &Condition) -> Option<Position> {
    match condition {
        Condition::Test(test) => matches!(test.selector, Selector::Body(_)).then_some(test.at),
        Condition::All(items) | Condition::Any(items) => items.iter().find_map(first_body_test),
        Condition::Not(inner) => first_body_test(inner),
    }
}
