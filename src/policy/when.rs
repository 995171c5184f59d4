//! Compiles a rule's `when:` tree into a [`Condition`], reporting every
//! mistake with its position and carrying on, so one load shows them all.

use std::path::Path;

use regex::Regex;
use serde_saphyr::Spanned;

use super::condition::{
    CallerField, Condition, Operand, Operator, Scalar, ScalarKind, Selector, Test,
};
use super::diagnostics::{Diagnostics, Position};
use super::model::Node;
use super::selector::{self, CALLER_FIELDS};
use super::template::PathTemplate;
use super::types;

const OPERATORS: &str = "equals, one_of, prefix, regex, exists, absent, min or max";

/// Compiles `when:` trees of one rule.
pub(crate) struct WhenCompiler<'a> {
    pub(crate) file: &'a Path,
    pub(crate) diags: &'a mut Diagnostics,
    /// The rule's template, or `None` if it did not parse (then `path.`
    /// selectors are not checked, to avoid errors that only echo that one).
    pub(crate) template: Option<&'a PathTemplate>,
    /// Cleared by any error.
    pub(crate) ok: bool,
}

fn pos<T>(node: &Spanned<T>) -> Position {
    Position::from_location(&node.referenced)
}

impl WhenCompiler<'_> {
    fn error(&mut self, at: Position, message: impl Into<String>) {
        self.ok = false;
        self.diags.error(self.file, at, message);
    }

    /// A condition map: every entry must hold.
    pub(crate) fn map(&mut self, node: &Spanned<Node>) -> Condition {
        let Node::Map(entries) = &node.value else {
            self.error(
                pos(node),
                format!(
                    "expected a map of conditions (`selector: {{ operator: value }}`, `all`, `any` or `not`), found {}",
                    node.value.kind()
                ),
            );
            return Condition::All(Vec::new());
        };
        if entries.is_empty() {
            self.error(pos(node), "empty condition map: it would always hold");
        }
        let mut items = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match key.value.as_str() {
                group @ ("all" | "any") => {
                    let Node::Seq(list) = &value.value else {
                        self.error(
                            pos(value),
                            format!(
                                "`{group}` takes a list of condition maps, found {}",
                                value.value.kind()
                            ),
                        );
                        continue;
                    };
                    if list.is_empty() {
                        self.error(
                            pos(value),
                            format!("`{group}` needs at least one condition map"),
                        );
                    }
                    let members = list.iter().map(|m| self.map(m)).collect();
                    items.push(if group == "all" {
                        Condition::All(members)
                    } else {
                        Condition::Any(members)
                    });
                }
                "not" => items.push(Condition::Not(Box::new(self.map(value)))),
                _ => self.selector_entry(key, value, &mut items),
            }
        }
        Condition::All(items)
    }

    /// `selector: { op: value, ... }`: one test per operator, in YAML order.
    fn selector_entry(
        &mut self,
        key: &Spanned<String>,
        value: &Spanned<Node>,
        out: &mut Vec<Condition>,
    ) {
        let selector = self.selector(key);
        let Node::Map(ops) = &value.value else {
            self.error(
                pos(value),
                format!(
                    "`{}` needs an operator map like `{{ equals: ... }}`, found {}",
                    key.value,
                    value.value.kind()
                ),
            );
            return;
        };
        if ops.is_empty() {
            self.error(
                pos(value),
                format!("empty operator map for `{}`: use {OPERATORS}", key.value),
            );
        }
        let (mut min, mut max) = (None, None);
        let first = out.len();
        for (op_key, op_value) in ops {
            let Some(operator) = self.operator(op_key, op_value) else {
                continue;
            };
            match operator {
                Operator::Min(n) => min = Some(n),
                Operator::Max(n) => max = Some(n),
                _ => {}
            }
            if let Some(selector) = &selector {
                out.push(Condition::Test(Test {
                    selector: selector.clone(),
                    operator,
                    selector_text: key.value.clone(),
                    at: pos(op_key),
                }));
            }
        }
        for (at, message) in types::mismatches(&out[first..]) {
            self.error(at, message);
        }
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                self.error(
                    pos(value),
                    format!(
                        "`{}`: min {min} is greater than max {max}, so it never holds",
                        key.value
                    ),
                );
            }
        }
    }

    fn selector(&mut self, key: &Spanned<String>) -> Option<Selector> {
        selector::parse(&key.value, self.template).unwrap_or_else(|message| {
            self.error(pos(key), message);
            None
        })
    }

    fn operator(&mut self, key: &Spanned<String>, value: &Spanned<Node>) -> Option<Operator> {
        let name = key.value.as_str();
        let at = pos(value);
        match name {
            "equals" => self.operand(value, true).map(Operator::Equals),
            "one_of" => {
                let Node::Seq(items) = &value.value else {
                    self.error(
                        at,
                        format!("`one_of` takes a list, found {}", value.value.kind()),
                    );
                    return None;
                };
                if items.is_empty() {
                    self.error(
                        at,
                        "`one_of` needs at least one value: an empty list never holds",
                    );
                    return None;
                }
                let mut scalars = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(Operand::Literal(s)) = self.operand(item, false) {
                        scalars.push(s);
                    }
                }
                (scalars.len() == items.len()).then_some(Operator::OneOf(scalars))
            }
            "prefix" => match self.operand(value, false)? {
                Operand::Literal(Scalar {
                    kind: ScalarKind::Str,
                    text,
                }) => Some(Operator::Prefix(text)),
                _ => {
                    self.error(
                        at,
                        format!("`prefix` takes a string, found {}", value.value.kind()),
                    );
                    None
                }
            },
            "regex" => {
                let Node::String(pattern) = &value.value else {
                    self.error(
                        at,
                        format!("`regex` takes a string, found {}", value.value.kind()),
                    );
                    return None;
                };
                // The pattern must compile on its own before it is wrapped:
                // otherwise `a)|(b` would become `^(?:a)|(b)$`, which is
                // valid but anchored on one side per branch only.
                let anchored =
                    Regex::new(pattern).and_then(|_| Regex::new(&format!("^(?:{pattern})$")));
                match anchored {
                    Ok(re) => Some(Operator::Regex(re, pattern.clone())),
                    Err(e) => {
                        self.error(at, format!("invalid regex: {}", one_line(&e.to_string())));
                        None
                    }
                }
            }
            "exists" | "absent" => {
                if value.value == Node::Bool(true) {
                    Some(if name == "exists" {
                        Operator::Exists
                    } else {
                        Operator::Absent
                    })
                } else {
                    let other = if name == "exists" { "absent" } else { "exists" };
                    self.error(
                        at,
                        format!(
                            "`{name}` only takes `true` (for the opposite, use `{other}: true`)"
                        ),
                    );
                    None
                }
            }
            "min" | "max" => {
                let bound = match value.value {
                    Node::Int(i) => Some(i as f64),
                    Node::UInt(u) => Some(u as f64),
                    Node::Float(f) if f.is_finite() => Some(f),
                    _ => None,
                };
                let Some(bound) = bound else {
                    self.error(
                        at,
                        format!(
                            "`{name}` takes a finite number, found {}",
                            value.value.kind()
                        ),
                    );
                    return None;
                };
                Some(if name == "min" {
                    Operator::Min(bound)
                } else {
                    Operator::Max(bound)
                })
            }
            _ => {
                self.error(
                    pos(key),
                    format!("unknown operator `{name}`: expected {OPERATORS}"),
                );
                None
            }
        }
    }

    /// A scalar operand; with `allow_ref`, also `caller.<field>`.
    fn operand(&mut self, value: &Spanned<Node>, allow_ref: bool) -> Option<Operand> {
        let at = pos(value);
        let (kind, text) = match &value.value {
            Node::String(s) => {
                if let Some(field) = caller_reference(s) {
                    if !allow_ref {
                        self.error(
                            at,
                            format!("`{s}`: caller references are only supported by `equals`"),
                        );
                        return None;
                    }
                    return match CallerField::parse(field) {
                        Some(field) => Some(Operand::Caller(field)),
                        None => {
                            self.error(
                                at,
                                format!("unknown caller field `{field}`: expected {CALLER_FIELDS}"),
                            );
                            None
                        }
                    };
                }
                return Some(Operand::Literal(Scalar::string(s.clone())));
            }
            Node::Bool(b) => (ScalarKind::Bool(*b), b.to_string()),
            Node::Int(i) => (ScalarKind::Int(i128::from(*i)), i.to_string()),
            Node::UInt(u) => (ScalarKind::Int(i128::from(*u)), u.to_string()),
            Node::Float(f) if f.is_finite() => (ScalarKind::Float(*f), f.to_string()),
            Node::Float(_) => {
                self.error(at, "a non-finite number cannot be compared");
                return None;
            }
            Node::Null => {
                self.error(at, "null never matches (missing values and JSON null fail every operator): use `absent: true`");
                return None;
            }
            other => {
                self.error(
                    at,
                    format!(
                        "expected a string, number or boolean, found {}",
                        other.kind()
                    ),
                );
                return None;
            }
        };
        Some(Operand::Literal(Scalar { kind, text }))
    }
}

/// The field name if `s` has the form `caller.<identifier>`.
fn caller_reference(s: &str) -> Option<&str> {
    let field = s.strip_prefix("caller.")?;
    (!field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(field)
}

/// Regex errors span several lines (pattern, caret, message); a diagnostic is one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || message.split_whitespace().collect::<Vec<_>>().join(" "),
            str::to_owned,
        )
}
