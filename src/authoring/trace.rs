//! The trace of one evaluation: what each routed rule did, and for each
//! condition the values it saw and whether it held. Recorded by an
//! [`Observer`] on the evaluator the gateway itself runs, so the trace cannot
//! drift from what the gateway decides.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde_json::Value;

use crate::policy::{Condition, Mode, Observer, Position, Rule, RuleOutcome, Seen, Test};

/// One condition in a trace.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceNode {
    /// A selector and operator, with every value it looked at.
    Test {
        /// The test as written, e.g. `path.memberId equals caller.subjectId`.
        text: String,
        /// Where its operator is written.
        at: Position,
        /// Each value seen (rendered) and whether the operator held for it.
        values: Vec<(String, bool)>,
        /// Whether the test held over all its values.
        held: bool,
    },
    /// An `all`, `any` or `not` group.
    Group {
        /// `all`, `any` or `not`.
        kind: &'static str,
        /// Whether the group held.
        held: bool,
        /// Its members, in the order written.
        children: Vec<TraceNode>,
    },
}

impl TraceNode {
    /// Whether this condition held.
    pub fn held(&self) -> bool {
        match self {
            TraceNode::Test { held, .. } | TraceNode::Group { held, .. } => *held,
        }
    }
}

/// What happened to one routed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTrace {
    /// The rule's id.
    pub id: String,
    /// Its file.
    pub file: PathBuf,
    /// Where its id is written.
    pub at: Position,
    /// Its mode.
    pub mode: Mode,
    /// The route's captures, `(name, value)`.
    pub captures: Vec<(String, String)>,
    /// What happened; `None` when an earlier rule decided first.
    pub outcome: Option<RuleOutcome>,
    /// The conditions, when the rule admitted the caller (an `all` group).
    pub conditions: Option<TraceNode>,
}

/// An [`Observer`] that records a full trace. It is exhaustive, so a trace
/// shows every test of an evaluated rule, not only up to the first failure.
#[derive(Debug, Default)]
pub struct TraceRecorder {
    /// The rules evaluated, in precedence order.
    pub rules: Vec<RuleTrace>,
    pending: Vec<TraceNode>,
    values: Vec<(String, bool)>,
}

impl Observer for TraceRecorder {
    const EXHAUSTIVE: bool = true;

    fn value(&mut self, _test: &Test, seen: Seen<'_>, held: bool) {
        self.values.push((render_seen(seen), held));
    }

    fn test(&mut self, test: &Test, held: bool) {
        self.pending.push(TraceNode::Test {
            text: test.to_string(),
            at: test.position(),
            values: std::mem::take(&mut self.values),
            held,
        });
    }

    fn group(&mut self, condition: &Condition, held: bool) {
        // Exhaustive evaluation reports every member before its group.
        let (kind, members) = match condition {
            Condition::All(items) => ("all", items.len()),
            Condition::Any(items) => ("any", items.len()),
            Condition::Not(_) => ("not", 1),
            Condition::Test(_) => return,
        };
        let children = self
            .pending
            .split_off(self.pending.len().saturating_sub(members));
        self.pending.push(TraceNode::Group {
            kind,
            held,
            children,
        });
    }

    fn rule(&mut self, rule: &Rule, outcome: RuleOutcome) {
        let conditions = match outcome {
            RuleOutcome::NotAdmitted | RuleOutcome::QueryNotAllowed => None,
            _ => self.pending.pop(),
        };
        self.pending.clear();
        self.rules.push(RuleTrace {
            id: rule.id().to_owned(),
            file: rule.file().to_path_buf(),
            at: rule.position(),
            mode: rule.mode(),
            captures: Vec::new(),
            outcome: Some(outcome),
            conditions,
        });
    }
}

/// How a seen value is shown: strings quoted, JSON compact and shortened.
pub fn render_seen(seen: Seen<'_>) -> String {
    match seen {
        Seen::Missing => "nothing".to_owned(),
        Seen::NotUtf8 => "a non-UTF-8 value".to_owned(),
        Seen::Str(s) => shorten(format!("{s:?}")),
        Seen::Json(value @ Value::String(_)) => shorten(value.to_string()),
        Seen::Json(value) => shorten(value.to_string()),
    }
}

fn shorten(mut text: String) -> String {
    const MAX: usize = 120;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        text = format!("{cut}…");
    }
    text
}

fn mark(held: bool) -> &'static str {
    if held {
        "pass"
    } else {
        "FAIL"
    }
}

impl RuleTrace {
    /// The trace of this rule as indented lines, each prefixed by `indent`.
    pub fn render(&self, indent: &str, caller: &str) -> String {
        let mut out = String::new();
        let what = match self.outcome {
            Some(RuleOutcome::Allowed) => "allows".to_owned(),
            Some(RuleOutcome::ConditionsFailed) => "conditions failed".to_owned(),
            Some(RuleOutcome::NotAdmitted) => format!("does not admit {caller}"),
            Some(RuleOutcome::QueryNotAllowed) => {
                "the request carries a query parameter this elevated rule does not name (see allow_query)".to_owned()
            }
            None => "not evaluated: an earlier rule decided".to_owned(),
        };
        let _ = writeln!(
            out,
            "{indent}rule {} ({}:{}, {}): {what}",
            self.id,
            self.file.display(),
            self.at,
            self.mode
        );
        if self.outcome.is_some() && !self.captures.is_empty() {
            let captures: Vec<String> = self
                .captures
                .iter()
                .map(|(name, value)| format!("{name} = {value:?}"))
                .collect();
            let _ = writeln!(out, "{indent}  captures: {}", captures.join(", "));
        }
        match &self.conditions {
            Some(TraceNode::Group { children, .. }) if children.is_empty() => {
                let _ = writeln!(out, "{indent}  no conditions");
            }
            Some(TraceNode::Group { children, .. }) => {
                for child in children {
                    render_node(&mut out, child, &format!("{indent}  "));
                }
            }
            Some(node) => render_node(&mut out, node, &format!("{indent}  ")),
            None => {}
        }
        out
    }
}

fn render_node(out: &mut String, node: &TraceNode, indent: &str) {
    match node {
        // An `any:`/`all:` member map with a single test reads best as that test.
        TraceNode::Group {
            kind: "all",
            children,
            ..
        } if children.len() == 1 => render_node(out, &children[0], indent),
        TraceNode::Test {
            text, values, held, ..
        } => {
            let seen = match values.as_slice() {
                [(value, _)] => value.clone(),
                many => many
                    .iter()
                    .map(|(value, held)| format!("{value} ({})", mark(*held).to_lowercase()))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let _ = writeln!(out, "{indent}{} {text}: saw {seen}", mark(*held));
        }
        TraceNode::Group {
            kind,
            held,
            children,
        } => {
            let _ = writeln!(out, "{indent}{} {kind}:", mark(*held));
            for child in children {
                render_node(out, child, &format!("{indent}  "));
            }
        }
    }
}

impl fmt::Display for TraceNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        render_node(&mut out, self, "");
        f.write_str(out.trim_end())
    }
}
